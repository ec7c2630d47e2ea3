"""A training run's folder: which files are ours, whether the run there finished, and its resume
state. A finished run is never replaced unless asked (`overwrite`), and then only our files."""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from typing import Any

from keras_pvt._safe_write import clean_stale
from keras_pvt.limits import check_model_config
from keras_pvt.training import backup
from keras_pvt.training.backup import RunState
from keras_pvt.training.outputs import write_json

RUN_FILE = "run.json"
BEST_MODEL = "best.keras"
FINAL_MODEL = "final.keras"  # the last epoch's model, for the runs that ask for it (detection)
HISTORY = "history.csv"
CURVES = "training_curves.png"
OUTPUTS = (RUN_FILE, BEST_MODEL, FINAL_MODEL, HISTORY, CURVES)


def refuse_finished(output: str, overwrite: bool) -> None:
    """Raise `ValueError` when `output` holds a finished run and `overwrite` is False (or when
    `output` is a file)."""
    if os.path.exists(output) and not os.path.isdir(output):
        raise ValueError(f"--output {output!r} is a file; a training run needs a folder.")
    if overwrite or not is_finished(output):
        return
    raise ValueError(
        f"{output} holds a finished training run ({', '.join(_ours(output))}); it is left untouched. "
        "Pass --overwrite (overwrite=True) to train again there (only those files are replaced), "
        f"choose another --output, or continue from it with --weights {os.path.join(output, BEST_MODEL)}."
    )


def is_finished(output: str) -> bool:
    """True once a run in `output` has finished, and for the outputs of a run that wrote no status
    (an earlier keras-pvt, or a copied folder); False while a run there is unfinished."""
    status = _read_json(os.path.join(output, RUN_FILE)).get("status")
    if status is not None:
        return status == "finished"
    return any(os.path.exists(os.path.join(output, name)) for name in (BEST_MODEL, HISTORY))


def prepare(run_dir: str, backup_dir: str, *, resume: bool, check_best: bool = True) -> RunState | None:
    """Clean what a killed run left and return the state to resume from (None: start over; an
    unfinished run is discarded when `resume` is False). A damaged resume state or ``best.keras``
    raises `ValueError` saying what to do."""
    for name in OUTPUTS:
        clean_stale(os.path.join(run_dir, name))
    if not resume:
        backup.discard(backup_dir)
        return None
    state = backup.read_state(backup_dir)
    backup.remove_stale(backup_dir, state)
    if state is None or not check_best:
        return state
    return _check_best(os.path.join(run_dir, BEST_MODEL), state, backup_dir)


def start(run_dir: str, info: dict[str, Any]) -> None:
    write_json(os.path.join(run_dir, RUN_FILE), {**info, "status": "running"})


def finish(run_dir: str, backup_dir: str, results: dict[str, Any]) -> None:
    """Mark the run finished (atomically), then delete its resume state."""
    info = _read_json(os.path.join(run_dir, RUN_FILE))
    write_json(os.path.join(run_dir, RUN_FILE), {**info, **results, "status": "finished"})
    backup.discard(backup_dir)


def keras_file_problem(path: str) -> str | None:
    """Why `path` is not a readable ``.keras`` archive of a model within the sanity limits (checked
    before anything is built: a huge config would exhaust memory), or None when it is one."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            names = set(archive.namelist())
            config = archive.read("config.json") if "config.json" in names else None
    except (OSError, zipfile.BadZipFile) as error:
        return f"not a .keras zip archive: {error}"
    if damaged is not None:
        return f"its member {damaged} is damaged"
    if config is None or "model.weights.h5" not in names:
        return "it lacks config.json or model.weights.h5"
    try:
        config = json.loads(config)
    except (ValueError, RecursionError) as error:
        return f"its config.json is not valid JSON: {error}"
    try:
        check_model_config(config, what="the model")
    except (ValueError, RecursionError) as reason:
        return f"its model is beyond keras-pvt's sanity limits: {reason}"
    return None


def _check_best(path: str, state: RunState, backup_dir: str) -> RunState:
    if state.best_epoch is None:
        return state
    rebuilt = state.best_epoch == state.epochs_done - 1  # its weights are the backup's
    if not os.path.exists(path):
        if rebuilt:
            return state
        warnings.warn(
            f"{path} (the best epoch so far, {state.best_epoch + 1}) is missing and cannot be "
            "rebuilt; best.keras will hold the best of the epochs still to run.",
            stacklevel=4,  # the caller of `train`
        )
        return state.without_best()
    problem = keras_file_problem(path)
    if problem is None:
        return state
    then = (
        f"it is rebuilt from the backup of epoch {state.epochs_done}"
        if rebuilt
        else f"the best of the epochs still to run is saved there (epoch {state.best_epoch + 1}, "
        "the best so far, cannot be rebuilt)"
    )
    raise ValueError(
        f"{path} is corrupt ({problem}). Move it aside (or delete it) and run again to resume from "
        f"the last finished epoch ({state.epochs_done}, in {backup_dir}): {then}."
    )


def _ours(output: str) -> list[str]:
    return [name for name in OUTPUTS if os.path.exists(os.path.join(output, name))]


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path) as handle:
            values = json.load(handle)
    except (OSError, ValueError):
        return {}
    return values if isinstance(values, dict) else {}
