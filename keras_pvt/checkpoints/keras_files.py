"""Load our own Keras files (``.weights.h5``, ``.keras``) into an existing model, with one set of
errors for classifiers and segmenters: not that format, does not fit the model, unreadable, or
holding NaN or infinite weights (refused before anything is loaded, as for checkpoints)."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from keras_pvt.checkpoints.assign import CheckpointValueError, non_finite_entry
from keras_pvt.checkpoints.errors import CheckpointReadError

__all__ = ["check_finite_weights", "load_keras_file"]

KERAS_ARCHIVE_WEIGHTS = "model.weights.h5"  # the weights inside a `.keras` zip archive
# What h5py and zipfile raise for a truncated or corrupt file (h5py: OSError on open, RuntimeError
# or KeyError for damaged object headers).
READ_ERRORS = (OSError, EOFError, KeyError, RuntimeError, zipfile.BadZipFile)


def load_keras_file(
    model: Any, path: Path, *, rebuild: str, load: Callable[[Any, Path], None] | None = None
) -> None:
    """`load(model, path)` (default ``model.load_weights``) with errors naming the file and the fix.

    A file without the format's signature, or one truncated or corrupt, raises `CheckpointReadError`;
    one holding NaN or infinite weights `CheckpointValueError` (the model untouched); one that does
    not fit `model` raises ValueError, ending "Build the same `rebuild` that saved them."
    """
    kind = "Keras model (.keras)" if _is_keras_archive(path) else "Keras weights (.weights.h5)"
    if not _has_keras_signature(path):
        raise CheckpointReadError(
            f"{str(path)!r} is not a {kind} file: "
            + ("it is not a zip archive" if _is_keras_archive(path) else "it is not an HDF5 file")
            + " (truncated, corrupt or another format under that name). Save or download it again."
        )
    check_finite_weights(path)
    try:
        if load is None:
            model.load_weights(os.fspath(path))
        else:
            load(model, path)
    except ValueError as error:
        raise ValueError(
            f"The Keras weights {str(path)!r} do not fit model {model.name!r}: {error} Build the "
            f"same {rebuild} that saved them."
        ) from error
    except READ_ERRORS as error:
        raise _unreadable(path, error) from error


def _unreadable(path: Path, error: BaseException) -> CheckpointReadError:
    kind = "Keras model (.keras)" if _is_keras_archive(path) else "Keras weights (.weights.h5)"
    return CheckpointReadError(
        f"Cannot read {str(path)!r} as a {kind} file: it is truncated or corrupt "
        f"({type(error).__name__}: {error}). Save or download it again."
    )


def check_finite_weights(path: Path) -> None:
    """`CheckpointValueError` naming `path` and each weight of this Keras file with NaN or inf values.

    Reads every float weight once, before any is loaded; a file h5py cannot read (truncated or
    corrupt) raises `CheckpointReadError` naming it.
    """
    try:
        not_finite = [
            entry
            for name, value in _float_weights(path)
            if (entry := non_finite_entry(name, value)) is not None
        ]
    except READ_ERRORS as error:
        raise _unreadable(path, error) from error
    if not_finite:
        raise CheckpointValueError([], not_finite, source=os.fspath(path))


def _float_weights(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(name, values) of every floating-point dataset of a `.weights.h5` file or a `.keras` archive."""
    if not _is_keras_archive(path):
        with h5py.File(os.fspath(path), "r") as file:
            yield from _h5_float_datasets(file)
        return
    with zipfile.ZipFile(path) as archive:
        if KERAS_ARCHIVE_WEIGHTS not in archive.namelist():
            return  # another layout of a later Keras: Keras's own loading checks what it reads
        with archive.open(KERAS_ARCHIVE_WEIGHTS) as member, h5py.File(member, "r") as file:
            yield from _h5_float_datasets(file)


def _h5_float_datasets(file: h5py.File) -> Iterator[tuple[str, np.ndarray]]:
    names: list[str] = []
    file.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
    for name in names:
        dataset = file[name]
        if dataset.dtype.kind == "f":
            yield name, np.asarray(dataset[...])


def _is_keras_archive(path: Path) -> bool:
    return path.name.lower().endswith(".keras")


def _has_keras_signature(path: Path) -> bool:
    """A `.keras` file is a zip archive, a `.weights.h5` file an HDF5 file."""
    if _is_keras_archive(path):
        return zipfile.is_zipfile(path)
    return bool(h5py.is_hdf5(os.fspath(path)))
