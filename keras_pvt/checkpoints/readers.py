"""Read a checkpoint file into a flat ``{name: numpy array}`` state dict, whatever its format.

Formats: ``.safetensors`` (NumPy API of the `safetensors` package, no torch), ``.pth`` / ``.pt`` /
``.bin`` (PyTorch pickles, read with ``torch.load(weights_only=True)`` so nothing in the file is
executed; torch is an optional dependency) and ``.npz``. A truncated or corrupt file raises
`CheckpointReadError` naming the file and the likely cause, never an error from deep inside a library.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

SAFETENSORS_SUFFIXES = (".safetensors",)
TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
NUMPY_SUFFIXES = (".npz",)
KERAS_SUFFIXES = (".weights.h5", ".keras")
# Keys under which training scripts nest the weights (official PVT, DeiT-style and Lightning dumps).
NESTED_KEYS = ("state_dict", "model", "model_ema", "module", "params")


class CheckpointReadError(ValueError):
    """A checkpoint file that cannot be read: truncated, corrupt, or not the format its name says."""


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

    Raises FileNotFoundError for a missing file, `CheckpointReadError` for an unreadable one and
    ImportError (with the install command) when a PyTorch file is given but torch is not installed.
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
    import ml_dtypes  # noqa: F401 - registers bfloat16 with NumPy (ml_dtypes ships with TensorFlow)
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError, TypeError) as error:
        raise _corrupt(path, "safetensors", error) from error
    return {key: _to_float32(np.asarray(value)) for key, value in state.items()}


def _to_float32(value: np.ndarray) -> np.ndarray:
    """Half-precision tensors (float16, bfloat16) widened to float32; others unchanged."""
    if (value.dtype.kind == "f" and value.dtype.itemsize < 4) or value.dtype.name == "bfloat16":
        return value.astype(np.float32)
    return value


def _read_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            f"Reading the PyTorch checkpoint {str(path)!r} needs torch: `pip install "
            "keras-pvt[torch]` (or `pip install torch`). Or convert it to safetensors once where "
            "torch is installed and pass the `.safetensors` file instead."
        ) from error
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as error:
        raise _corrupt(path, "PyTorch", error) from error
    except Exception as error:  # pickle.UnpicklingError and torch's weights-only refusals
        raise CheckpointReadError(
            f"Cannot read {str(path)!r} safely: torch.load(weights_only=True) refused it "
            f"({type(error).__name__}: {error}). It is corrupt, or it pickles objects other than "
            "tensors; re-save only the state dict (`torch.save(model.state_dict(), path)`)."
        ) from error
    state = _unwrap(obj, path)
    out = {}
    for key, value in state.items():
        if not hasattr(value, "detach"):
            continue
        tensor = value.detach().cpu()
        if tensor.dtype in (torch.bfloat16, torch.float16):
            tensor = tensor.float()
        out[key] = tensor.numpy()
    return out


def _unwrap(obj: Any, path: Path) -> Mapping[str, Any]:
    """The tensor mapping inside a training dump ({"model": {...}, "optimizer": ...})."""
    for _ in range(3):
        if not isinstance(obj, Mapping):
            break
        if any(hasattr(v, "shape") for v in obj.values()):
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
    try:
        with np.load(str(path), allow_pickle=False) as archive:
            return {key: np.asarray(archive[key]) for key in archive.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as error:
        raise _corrupt(path, "NumPy .npz", error) from error
