"""Keras callbacks of training runs: the resumable end of an epoch, divergence, a time budget."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

import keras

from keras_pvt._safe_write import flush_to_disk, replacing
from keras_pvt.limits import number
from keras_pvt.training import backup
from keras_pvt.training.backup import RunState
from keras_pvt.training.outputs import write_history
from keras_pvt.training.run_folder import BEST_MODEL, HISTORY


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite; the epochs finished before are kept."""


class EpochCheckpoint(keras.callbacks.Callback):
    """Each epoch's end in an order that a kill at any point cannot break:

    1. the weights (with the optimizer state) to ``backup/epoch-N.weights.h5``;
    2. ``backup/state.json`` (atomic), naming them: from here the epoch is finished;
    3. ``history.csv`` and, when `monitor` improved, ``best.keras`` (both atomic).

    On resume (`state` given) the weights are restored and step 3 is redone from the state, so
    every finished epoch is logged once and the best one is never lost. `saved(model)` is the model
    ``best.keras`` holds (default: the trained model itself; a RetinaNet trained on its raw outputs
    saves its detector, same weights).
    """

    def __init__(
        self,
        run_dir: str,
        backup_dir: str,
        state: RunState | None,
        monitor: str = "val_accuracy",
        saved: Callable[[keras.Model], keras.Model] | None = None,
    ) -> None:
        super().__init__()
        self.best_path = os.path.join(run_dir, BEST_MODEL)
        self.history_path = os.path.join(run_dir, HISTORY)
        self.backup_dir = backup_dir
        self.state = state or RunState()
        self.monitor = monitor
        self.saved = saved

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.state.weights is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        path = os.path.join(self.backup_dir, self.state.weights)
        try:
            self.model.load_weights(path)
        except (OSError, ValueError) as error:
            raise ValueError(
                f"Cannot restore the backup {path} into this model ({str(error)[:300]}). Resume with "
                "the same variant, dataset and precision, or run again with --no-resume "
                "(resume=False) to discard the backup and start over."
            ) from error
        write_history(self.history_path, self.state.history)
        if self.state.best_epoch == self.state.epochs_done - 1:
            self._save_best()  # a kill may have come before step 3 of that epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {"epoch": epoch, **{name: float(value) for name, value in (logs or {}).items()}}
        value = row.get(self.monitor, math.nan)
        improved = math.isfinite(value) and (self.state.best_value is None or value > self.state.best_value)
        os.makedirs(self.backup_dir, exist_ok=True)
        weights = backup.weights_name(epoch + 1)
        self.model.save_weights(os.path.join(self.backup_dir, weights))
        flush_to_disk(os.path.join(self.backup_dir, weights))
        self.state = self.state.after_epoch(row, weights, value if improved else None)
        backup.commit(self.backup_dir, self.state)
        write_history(self.history_path, self.state.history)
        if improved:
            self._save_best()

    def _save_best(self) -> None:
        save_model(self.saved_model(), self.best_path)

    def saved_model(self) -> keras.Model:
        """The model that ``best.keras`` (and a run's ``final.keras``) holds, of the current weights."""
        return self.model if self.saved is None else self.saved(self.model)


def save_model(model: keras.Model, path: str) -> None:
    """`model` to the ``.keras`` file `path`, written beside and renamed into place."""
    with replacing(path, suffix=".keras") as temp:
        model.save(temp)


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raise `TrainingDivergedError` at the first batch whose loss is NaN or infinite, before the
    epoch ends: nothing of the diverged epoch is saved, logged or restored from."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDivergedError(
                f"Training diverged: the loss is {float(loss)} at epoch {self.epoch + 1}, batch "
                f"{batch + 1}. The finished epochs before it are kept (best.keras, history.csv, "
                "backup/). Lower the learning rate (--lr), set --clip-norm, or train in float32, "
                "then run again to resume from the last finished epoch."
            )


class TimeBudget(keras.callbacks.Callback):
    """Stop training at the end of the first epoch that ends more than `seconds` after the start."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = number("time budget (seconds)", seconds, 0.0, above=True)
        self.start = time.perf_counter()
        self.stopped_epoch: int | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if time.perf_counter() - self.start > self.seconds:
            self.stopped_epoch = epoch
            print(f"time budget of {self.seconds:.0f} s reached after epoch {epoch + 1}: stopping")
            self.model.stop_training = True
