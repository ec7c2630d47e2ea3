"""The task-independent part of a training run: the strategy and run folder, a resumable
`model.fit` writing its outputs there, and the finish (curves, best model, run.json status).

`train` (classification), `train_segmentation` and `train_detection` each build their data and
compiled model, then hand them to `fit_in_run_folder`; everything about folders, resume and safety
is here, once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import keras
import tensorflow as tf

from keras_pvt.checkpoints.keras_files import load_keras_model
from keras_pvt.segmentation.mask_checks import MASK_ERROR
from keras_pvt.training import multi_worker, run_folder
from keras_pvt.training.backup import RunState
from keras_pvt.training.callbacks import EpochCheckpoint, StopOnNonFiniteLoss, save_model
from keras_pvt.training.options import RunOptions
from keras_pvt.training.outputs import plot_history, read_history
from keras_pvt.training.run_folder import BEST_MODEL, CURVES, FINAL_MODEL, HISTORY, OUTPUTS
from keras_pvt.training.strategy import get_strategy, is_chief

LOGS = "logs"  # TensorBoard
BACKUP = "backup"  # the resume state


@dataclasses.dataclass
class Placement:
    """Where a process of the run trains and writes: the strategy and its folders (made only once
    the data and the model are ready, by `fit_in_run_folder`)."""

    strategy: tf.distribute.Strategy
    run_dir: str  # the output folder (chief), or a temporary one (other workers)
    backup_dir: str
    chief: bool


@dataclasses.dataclass
class RunResult:
    """What every training run produced: the best model (weights of the best validation epoch),
    its history and its files in ``output``."""

    model: keras.Model
    history: dict[str, list[float]]
    class_names: list[str]
    output: str
    best_model_path: str
    history_path: str
    curves_path: str | None
    epochs_run: int

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclasses.dataclass
class FitOutcome:
    """What `fit_in_run_folder` produced (the paths are the chief's, in ``run.output``)."""

    model: keras.Model  # the best epoch's model (the last one when no epoch improved)
    history: dict[str, list[float]]
    best_value: float | None
    epochs_run: int
    best_model_path: str
    history_path: str
    curves_path: str | None
    results: dict[str, Any]  # what run.json gained at the end
    final_model_path: str | None = None  # with `final_model`: the last epoch's model

    def result_fields(self, class_names: list[str], output: str) -> dict[str, Any]:
        """The `RunResult` fields of this outcome, as keywords."""
        return {
            "model": self.model,
            "history": self.history,
            "class_names": list(class_names),
            "output": output,
            "best_model_path": self.best_model_path,
            "history_path": self.history_path,
            "curves_path": self.curves_path,
            "epochs_run": self.epochs_run,
        }


def start_run(run: RunOptions) -> Placement:
    """Refuse a finished run's folder, pick the strategy (before any other TensorFlow op:
    multi-worker collectives need it) and seed the data order. Nothing is written yet: the data
    are checked first (a refused dataset leaves no run folder behind)."""
    run_folder.refuse_finished(run.output, run.overwrite)
    placement = _place(run)
    if run.seed is not None:
        keras.utils.set_random_seed(run.seed)  # before the pipelines: same data order every run
    return placement


def make_pipelines_from(data: Any, make: Callable[..., Any], ready: type, seed: int | None) -> Any:
    """The pipelines a data options dataclass names: `data.dataset` itself when it is `ready`
    pipelines, else ``make(data.dataset, seed=seed, <every other field of data>)``."""
    if isinstance(data.dataset, ready):
        return data.dataset
    fields = {f.name: getattr(data, f.name) for f in dataclasses.fields(data) if f.name != "dataset"}
    return make(data.dataset, seed=seed, **fields)


def run_info(data: Any, recipe: Any, run: RunOptions, pipes: Any, strategy: tf.distribute.Strategy) -> dict:
    """What ``run.json`` records about any run (the tasks add their own entries)."""
    return {
        "dataset": data.dataset if isinstance(data.dataset, str) else "<pipelines>",
        "class_names": list(pipes.class_names),
        "image_size": pipes.image_size,
        "batch_size": pipes.batch_size,
        "epochs": run.epochs,
        "precision": run.precision,
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "recipe": dataclasses.asdict(recipe),
        "peak_lr": recipe.peak_lr(pipes.batch_size),
        "weights": run.weights,
    }


def fit_in_run_folder(
    place: Placement,
    run: RunOptions,
    *,
    train: tf.data.Dataset,
    val: tf.data.Dataset | None,
    steps_per_epoch: int,
    build: Callable[[int], keras.Model],
    info: dict[str, Any],
    monitor: str,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: str | int = "auto",
    evaluate: Callable[[keras.Model, Placement], dict[str, Any]] | None = None,
    epoch_callbacks: Sequence[keras.callbacks.Callback] = (),
    saved: Callable[[keras.Model], keras.Model] | None = None,
    final_model: bool = False,
) -> FitOutcome:
    """Fit the model `build(steps)` returns (compiled; called under the strategy scope and the run's
    precision) on `train`, validating on `val` (None: `model.fit` validates nothing), resumably,
    best epoch by `monitor`; then finish the run. `info` starts run.json; `evaluate(best_model,
    place)` may add results to it.

    `epoch_callbacks` run before the checkpoint at each epoch's end: they may add `monitor` (and
    other columns of ``history.csv``) to the logs. `saved(model)` is what ``best.keras`` holds
    (default: the fitted model); `final_model` also writes the last epoch's as ``final.keras``."""
    steps = run.steps_per_epoch or steps_per_epoch
    if run.steps_per_epoch:
        train = train.repeat()
    if run.seed is not None:
        keras.utils.set_random_seed(run.seed)  # same initial weights every run
    previous_policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(run.precision)
    try:
        with place.strategy.scope():
            model = build(steps)
            if isinstance(place.strategy, tf.distribute.MultiWorkerMirroredStrategy):
                multi_worker.prepare(model, train.element_spec)
        before = _our_entries(place.run_dir)
        state = _open_folder(place, run)
        checkpoint = EpochCheckpoint(place.run_dir, place.backup_dir, state, monitor, saved)
        first_epoch = checkpoint.state.epochs_done
        run_folder.start(place.run_dir, info)
        try:
            model.fit(
                train,
                validation_data=val,
                epochs=run.epochs,
                initial_epoch=first_epoch,
                steps_per_epoch=steps if run.steps_per_epoch else None,
                callbacks=[
                    StopOnNonFiniteLoss(),
                    *epoch_callbacks,
                    checkpoint,
                    *_tensorboard(place.run_dir),
                    *callbacks,
                ],
                shuffle=False,  # the pipeline shuffles
                verbose=verbose,
            )
        except tf.errors.InvalidArgumentError as error:
            explained = _explain_data_error(error)
            if explained is not error and checkpoint.state.epochs_done == first_epoch:
                _remove_new_entries(place.run_dir, before)  # refused data: this call leaves nothing
            raise explained from error
    finally:
        keras.mixed_precision.set_dtype_policy(previous_policy)
    return _finish(checkpoint, model, place, run.output, monitor, evaluate, final_model)


def _place(run: RunOptions) -> Placement:
    """Pick the strategy and this process's folders (a temporary one for non-chief workers)."""
    strategy = run.strategy
    if not isinstance(strategy, tf.distribute.Strategy):
        strategy = get_strategy(strategy, run.tpu)
    chief = is_chief(strategy)
    run_dir = run.output if chief else tempfile.mkdtemp(prefix="keras_pvt_worker_")
    backup_dir = os.path.join(run.output, BACKUP, *_worker_suffix(strategy))
    return Placement(strategy, run_dir, backup_dir, chief)


def _open_folder(place: Placement, run: RunOptions) -> RunState | None:
    """Make this process's folder, clean what a killed run left, read the state to resume."""
    os.makedirs(place.run_dir, exist_ok=True)
    resume = run.resume and not run.overwrite
    return run_folder.prepare(place.run_dir, place.backup_dir, resume=resume, check_best=place.chief)


def _our_entries(run_dir: str) -> set[str]:
    """The names of a run's files and folders that `run_dir` holds now ("." for the folder itself)."""
    if not os.path.isdir(run_dir):
        return set()
    return {".", *(name for name in (*OUTPUTS, LOGS, BACKUP) if os.path.exists(os.path.join(run_dir, name)))}


def _remove_new_entries(run_dir: str, before: set[str]) -> None:
    """Remove the run's files and folders that this call made in `run_dir` (not in `before`),
    and `run_dir` itself if this call made it and it is now empty."""
    for name in {*OUTPUTS, LOGS, BACKUP} - before:
        path = os.path.join(run_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.remove(path)
    if "." not in before:
        _remove_if_empty(run_dir)


def _finish(
    checkpoint: EpochCheckpoint,
    model: keras.Model,
    place: Placement,
    output: str,
    monitor: str,
    evaluate: Callable[[keras.Model, Placement], dict[str, Any]] | None,
    final_model: bool = False,
) -> FitOutcome:
    """Plot, save the final model if asked, load the best model, mark the run finished and delete
    its resume state."""
    chief = place.chief
    history = read_history(checkpoint.history_path)
    curves = plot_history(history, os.path.join(place.run_dir, CURVES)) if chief else None
    best_model = model if checkpoint.saved is None else checkpoint.saved(model)
    if final_model:
        save_model(best_model, os.path.join(place.run_dir, FINAL_MODEL))  # the last epoch's weights
    if os.path.exists(checkpoint.best_path):
        with place.strategy.scope(), warnings.catch_warnings():
            # mixed_float16: the saved loss-scale optimizer has extra variables; weights load fine
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            best_model = load_keras_model(checkpoint.best_path, compile=True)  # limits checked first
    state = checkpoint.state
    best_epoch = None if state.best_epoch is None else state.best_epoch + 1
    results = {"epochs_run": state.epochs_done, "best_epoch": best_epoch, f"best_{monitor}": state.best_value}
    if evaluate is not None:
        results.update(evaluate(best_model, place))
    run_folder.finish(place.run_dir, place.backup_dir, results)
    if not chief:
        shutil.rmtree(place.run_dir, ignore_errors=True)  # the temporary folder made for this worker
    _remove_if_empty(os.path.join(output, BACKUP))  # each worker removed its own sub-folder
    return FitOutcome(
        model=best_model,
        history=history,
        best_value=state.best_value,
        epochs_run=state.epochs_done,
        best_model_path=os.path.join(output, BEST_MODEL),
        history_path=os.path.join(output, HISTORY),
        curves_path=curves,
        results=results,
        final_model_path=os.path.join(output, FINAL_MODEL) if final_model else None,
    )


def _remove_if_empty(folder: str) -> None:
    with contextlib.suppress(OSError):  # missing, or another worker's backup is still there
        os.rmdir(folder)


def _worker_suffix(strategy: tf.distribute.Strategy) -> list[str]:
    resolver = getattr(strategy, "cluster_resolver", None)
    several = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    if several and resolver is not None and resolver.task_type is not None:
        return [f"{resolver.task_type}_{resolver.task_id}"]
    return []


def _tensorboard(run_dir: str) -> list[keras.callbacks.Callback]:
    if importlib.util.find_spec("tensorboard") is None:
        return []
    return [keras.callbacks.TensorBoard(os.path.join(run_dir, LOGS))]


def _explain_data_error(error: tf.errors.InvalidArgumentError) -> Exception:
    """A `ValueError` saying what is wrong with the data (a mask check's assertion, an image that
    failed to decode), or `error` itself when it is about something else."""
    message = str(error)
    assertion = re.search(rf"assertion failed: (\[{MASK_ERROR}.*)", message)
    if assertion:
        return ValueError(_assertion_text(assertion.group(1)))
    if any(word in message.lower() for word in ("decode", "jpeg", "png", "image")):
        return ValueError(
            "An image failed to decode while training: "
            f"{message.splitlines()[0][:300]}. Remove or re-encode the broken file(s)."
        )
    return error


def _assertion_text(data: str) -> str:
    """TensorFlow's printed assertion data (``[text] [9] [2 8 16]``) as one sentence: items
    joined by spaces, shapes in parentheses, no space before punctuation."""
    items = re.findall(r"\[(.*?)\](?= \[|$)", data)
    items = [f"({item})" if re.fullmatch(r"-?\d+( -?\d+)+", item) else item for item in items]
    return re.sub(r" ([.,;:)])", r"\1", " ".join(items)).replace("\\'", "'")
