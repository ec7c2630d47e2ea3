"""The resume state of an unfinished run, in ``backup/``: the weights of the last finished epoch
(``epoch-N.weights.h5``) and ``state.json``, written last, which names them and holds the history
rows and the best epoch so far. Writing ``state.json`` (atomically) is what finishes an epoch."""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import os
from typing import Any

from keras_pvt._safe_write import clean_stale
from keras_pvt.training.outputs import write_json

STATE = "state.json"
WEIGHTS_PATTERN = "epoch-*.weights.h5"


@dataclasses.dataclass(frozen=True)
class RunState:
    """What the finished epochs of a run left: ``epochs_done`` epochs, their weights file (in the
    backup folder), one history row per epoch, and the best epoch (0-based) with its value."""

    epochs_done: int = 0
    weights: str | None = None
    history: tuple[dict[str, float], ...] = ()
    best_epoch: int | None = None
    best_value: float | None = None

    def after_epoch(self, row: dict[str, float], weights: str, value: float | None) -> RunState:
        """The state once epoch ``epochs_done`` (0-based) finished; `value` when it is the new best."""
        best = (self.epochs_done, value) if value is not None else (self.best_epoch, self.best_value)
        return RunState(self.epochs_done + 1, weights, (*self.history, row), *best)

    def without_best(self) -> RunState:
        return dataclasses.replace(self, best_epoch=None, best_value=None)


def weights_name(epochs_done: int) -> str:
    return WEIGHTS_PATTERN.replace("*", str(epochs_done))


def read_state(backup_dir: str) -> RunState | None:
    """The state of an unfinished run in `backup_dir`, None when there is none; a damaged state or a
    missing weights file raises `ValueError` saying how to start over."""
    path = os.path.join(backup_dir, STATE)
    if not os.path.exists(path):
        return None
    start_over = "Run again with --no-resume (resume=False) to discard it and start over."
    try:
        with open(path) as handle:
            values: dict[str, Any] = json.load(handle)
        state = RunState(**{**values, "history": tuple(values.get("history", ()))})
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"The resume state {path} is unreadable ({error}). {start_over}") from error
    if state.weights is None or not os.path.isfile(os.path.join(backup_dir, state.weights)):
        raise ValueError(f"The resume state {path} names weights that are missing. {start_over}")
    return state


def commit(backup_dir: str, state: RunState) -> None:
    """Record `state` (atomically) and drop the weights of earlier epochs."""
    write_json(os.path.join(backup_dir, STATE), dataclasses.asdict(state))
    remove_stale(backup_dir, state)


def remove_stale(backup_dir: str, state: RunState | None) -> None:
    """Delete what a killed run left in `backup_dir` that `state` does not use."""
    clean_stale(os.path.join(backup_dir, STATE))
    for path in glob.glob(os.path.join(glob.escape(backup_dir), WEIGHTS_PATTERN)):
        if state is None or os.path.basename(path) != state.weights:
            with contextlib.suppress(OSError):
                os.remove(path)


def discard(backup_dir: str) -> None:
    """Delete the resume state (only this package's files); the folder too once it is empty."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(backup_dir, STATE))
    remove_stale(backup_dir, None)
    with contextlib.suppress(OSError):  # missing, or holds files that are not ours
        os.rmdir(backup_dir)
