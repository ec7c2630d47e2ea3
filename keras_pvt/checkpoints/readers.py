"""Read a checkpoint file into a flat ``{name: numpy array}`` state dict, whatever its format.

Formats: ``.safetensors`` (NumPy API of the `safetensors` package), ``.pth`` / ``.pt`` / ``.bin`` /
``.ckpt`` (PyTorch pickles, read without torch by `torch_pickle`, which rebuilds tensors and refuses
every other global, so nothing in the file is executed) and ``.npz``. A truncated or corrupt file
raises `CheckpointReadError` naming the file and the likely cause, never an error from deep inside a
library.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ml_dtypes  # noqa: F401 - registers bfloat16 with NumPy (ml_dtypes ships with TensorFlow)
import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file

import keras_pvt.checkpoints.torch_pickle as torch_pickle
from keras_pvt.checkpoints.errors import CheckpointReadError, UnsafeCheckpointError

__all__ = ["CheckpointReadError", "checkpoint_format", "read_state_dict"]

SAFETENSORS_SUFFIXES = (".safetensors",)
TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
NUMPY_SUFFIXES = (".npz",)
KERAS_SUFFIXES = (".weights.h5", ".keras")
# Keys under which training scripts nest the weights (official PVT, DeiT-style and Lightning dumps).
NESTED_KEYS = ("state_dict", "model", "model_ema", "module", "params")


def checkpoint_format(path: str | os.PathLike) -> str:
    """ "safetensors", "torch", "npz" or "keras" from the file name; ValueError if unknown."""
    name = os.fspath(path).lower()
    for kind, suffixes in (
        ("safetensors", SAFETENSORS_SUFFIXES),
        ("torch", TORCH_SUFFIXES),
        ("npz", NUMPY_SUFFIXES),
        ("keras", KERAS_SUFFIXES),
    ):
        if name.endswith(suffixes):
            return kind
    known = SAFETENSORS_SUFFIXES + TORCH_SUFFIXES + NUMPY_SUFFIXES + KERAS_SUFFIXES
    raise ValueError(
        f"Cannot tell the checkpoint format of {os.fspath(path)!r} from its name; "
        f"use one of the extensions {', '.join(known)}."
    )


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All tensors of a `.safetensors`, `.pth`/`.pt`/`.bin` or `.npz` checkpoint as NumPy arrays.

    Half-precision floats are widened to float32; other dtypes are kept (`assign_state_dict` refuses
    non-float weights). Raises FileNotFoundError for a missing file and `CheckpointReadError` for an
    unreadable one (`UnsafeCheckpointError` for a pickle that names code other than tensor rebuilding).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint file not found: {str(path)!r}.")
    kind = checkpoint_format(path)
    if kind == "keras":
        raise ValueError(
            f"{str(path)!r} is a Keras file: load it with `model.load_weights` (or pass it as "
            "`weights=`), not as a PyTorch-style state dict."
        )
    if path.stat().st_size == 0:
        raise CheckpointReadError(f"Checkpoint {str(path)!r} is empty (0 bytes); download it again.")
    reader = {"safetensors": _read_safetensors, "torch": _read_torch, "npz": _read_npz}[kind]
    state = reader(path)
    if not state:
        raise CheckpointReadError(f"Checkpoint {str(path)!r} contains no tensors.")
    return state


def _corrupt(path: Path, kind: str, error: BaseException) -> CheckpointReadError:
    return CheckpointReadError(
        f"Cannot read {str(path)!r} as a {kind} file: it is truncated, corrupt or not a {kind} "
        f"file ({type(error).__name__}: {error}). Download or export it again."
    )


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError, TypeError) as error:
        raise _corrupt(path, "safetensors", error) from error
    return {key: _to_float32(np.asarray(value)) for key, value in state.items()}


def _to_float32(value: np.ndarray) -> np.ndarray:
    """Half-precision tensors (float16, bfloat16, float8) widened to float32; others unchanged."""
    if (value.dtype.kind == "f" and value.dtype.itemsize < 4) or value.dtype.name.startswith(
        ("bfloat16", "float8")
    ):
        return value.astype(np.float32)
    return value


def _read_torch(path: Path) -> dict[str, np.ndarray]:
    state = _unwrap(torch_pickle.load(path), path)
    opaque = [key for key, value in state.items() if isinstance(value, torch_pickle.Placeholder)]
    if opaque:
        raise UnsafeCheckpointError(
            f"Refusing to load {str(path)!r}: its state dict holds objects of classes keras-pvt "
            f"never imports where tensors belong ({opaque[0]!r}: {state[opaque[0]]!r}). Re-save "
            "just the weights (`torch.save(model.state_dict(), path)`)."
        )
    return {
        key: _to_float32(value.numpy())
        for key, value in state.items()
        if isinstance(key, str) and isinstance(value, torch_pickle.TorchTensor)
    }


def _unwrap(obj: Any, path: Path) -> Mapping[str, Any]:
    """The tensor mapping inside a training dump ({"model": {...}, "optimizer": ...})."""
    for _ in range(3):
        if not isinstance(obj, Mapping):
            break
        if any(isinstance(v, torch_pickle.TorchTensor) for v in obj.values()):
            return obj
        inner = next((obj[k] for k in NESTED_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    raise CheckpointReadError(
        f"{str(path)!r} holds no state dict (found {type(obj).__name__}); save it with "
        "`torch.save(model.state_dict(), path)`."
    )


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):  # np.load would take it for a pickle and say so
        raise CheckpointReadError(
            f"Cannot read {str(path)!r} as a NumPy .npz file: it is not a zip archive (truncated, "
            "corrupt or another format). Download or export it again."
        )
    try:
        with np.load(str(path), allow_pickle=False) as archive:
            return {key: np.asarray(archive[key]) for key in archive.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as error:
        raise _corrupt(path, "NumPy .npz", error) from error
