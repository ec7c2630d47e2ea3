"""Extra Keras callbacks for training runs."""

from __future__ import annotations

import time

import keras


class TimeBudget(keras.callbacks.Callback):
    """Stop training at the end of the first epoch that ends more than `seconds` after the start."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.start = time.perf_counter()
        self.stopped_epoch: int | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if time.perf_counter() - self.start > self.seconds:
            self.stopped_epoch = epoch
            print(f"time budget of {self.seconds:.0f} s reached after epoch {epoch + 1}: stopping")
            self.model.stop_training = True
