"""Access to the timm-made parity fixtures in tests/fixtures (see make_reference.py there)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import keras
import numpy as np

from keras_pvt import PVTV2Config

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The bar: max |ours - timm| <= TOLERANCE * max |timm|, for the logits and every stage map.
TOLERANCE = 1e-4
OUTPUTS = ("logits", "stage1", "stage2", "stage3", "stage4")


@lru_cache(maxsize=1)
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "reference.npz") as archive:
        return {key: archive[key] for key in archive.files}


def fixture_config(name: str) -> PVTV2Config:
    """The architecture of a fixture model ("tiny_sr", "tiny_li" or "b0")."""
    meta = json.loads((FIXTURES / "reference.json").read_text())[name]
    return PVTV2Config(**meta)


def cases(name: str) -> list[str]:
    """Reference cases of one model, e.g. ["tiny_li/224x224", "tiny_li/45x60", ...]."""
    return sorted({key.rsplit("/", 1)[0] for key in reference() if key.startswith(name + "/")})


def images(case: str) -> np.ndarray:
    """The float32 input of a case, exactly as timm received it."""
    return (reference()[f"{case}/pixels"].astype(np.float32) - 127.5) / 64.0


def expected(case: str, output: str) -> np.ndarray:
    return reference()[f"{case}/{output}"]


@lru_cache(maxsize=1)
def b0_state() -> dict[str, np.ndarray]:
    """timm-named float32 state dict of the noisy pvt_v2_b0 (dequantised from int8 + scale)."""
    with np.load(FIXTURES / "b0_int8.npz") as archive:
        names = sorted({key.rsplit(":", 1)[0] for key in archive.files})
        return {n: archive[f"{n}:q"].astype(np.float32) * archive[f"{n}:scale"] for n in names}


def relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    ours, theirs = keras.ops.convert_to_numpy(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())
