"""Load our own Keras files (``.weights.h5``, ``.keras``) into an existing model, with one set of
errors for classifiers and segmenters: not that format, does not fit the model, unreadable."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py

from keras_pvt.checkpoints.errors import CheckpointReadError

__all__ = ["load_keras_file"]


def load_keras_file(
    model: Any, path: Path, *, rebuild: str, load: Callable[[Any, Path], None] | None = None
) -> None:
    """`load(model, path)` (default ``model.load_weights``) with errors naming the file and the fix.

    A file without the format's signature, or one truncated or corrupt, raises `CheckpointReadError`;
    one that does not fit `model` raises ValueError, ending "Build the same `rebuild` that saved them."
    """
    kind = "Keras model (.keras)" if _is_keras_archive(path) else "Keras weights (.weights.h5)"
    if not _has_keras_signature(path):
        raise CheckpointReadError(
            f"{str(path)!r} is not a {kind} file: "
            + ("it is not a zip archive" if _is_keras_archive(path) else "it is not an HDF5 file")
            + " (truncated, corrupt or another format under that name). Save or download it again."
        )
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
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise CheckpointReadError(
            f"Cannot read {str(path)!r} as a {kind} file: it is truncated or corrupt "
            f"({type(error).__name__}: {error}). Save or download it again."
        ) from error


def _is_keras_archive(path: Path) -> bool:
    return path.name.lower().endswith(".keras")


def _has_keras_signature(path: Path) -> bool:
    """A `.keras` file is a zip archive, a `.weights.h5` file an HDF5 file."""
    if _is_keras_archive(path):
        return zipfile.is_zipfile(path)
    return bool(h5py.is_hdf5(os.fspath(path)))
