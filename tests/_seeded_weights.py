"""Weights and images regenerated from a seed, shared by the timm fixture maker and the tests.

NumPy only (no torch, no keras_pvt): `tests/fixtures/make_variant_reference.py` imports it in the
timm venv, the tests in ours, and both get bit-identical arrays. Each tensor's values depend only on
(seed, its timm name, its shape): they come from the raw bits of its own PCG64 stream (a bit stream
NumPy keeps stable across versions, unlike `Generator`'s distributions), turned into unit-variance
uniform noise with float32 arithmetic.

Scales keep every layer's output near unit variance and the attention far from uniform, so a wrong
head count, a dropped bias or a misplaced norm changes the outputs far beyond round-off:
  * conv and linear weights: noise x gain / sqrt(fan-in) (gain 1.2 for the query and key/value
    projections, so attention logits have a standard deviation near 1.4; 1 elsewhere);
  * LayerNorm scales: 1 + 0.1 x noise; biases (linear, conv and LayerNorm shifts): 0.05 x noise.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence

import numpy as np

SEED = 20250611
# (height, width, batch) of every variant's reference cases: a small square with two images (the
# batch must not mix), and an odd non-square size with uneven reduction and pooling windows and
# stage maps below 7x7 (12x18, 6x9, 3x5, 2x3). Both above every preset's minimum input (29).
CASES = ((64, 64, 2), (45, 71, 1))
ATTENTION_GAIN = 1.2
NORM_SCALE_NOISE = 0.1
BIAS_NOISE = 0.05
_UNIFORM_BITS = 24
_SQRT3 = np.float32(math.sqrt(3.0))

Layout = Sequence[tuple[str, Sequence[int]]]


def case_name(height: int, width: int) -> str:
    """The key of one input size in a fixture file, e.g. "45x71"."""
    return f"{height}x{width}"


def _stream(seed: int, label: str) -> np.random.PCG64:
    """A PCG64 bit generator of its own for `label`, keyed by a stable hash (not Python's `hash`)."""
    digest = hashlib.sha256(f"{seed}:{label}".encode()).digest()
    return np.random.PCG64(int.from_bytes(digest[:16], "little"))


def unit_noise(seed: int, label: str, shape: Sequence[int]) -> np.ndarray:
    """Float32 uniform noise of mean 0 and variance 1, a pure function of (seed, label, shape)."""
    count = math.prod(shape)
    raw = _stream(seed, f"{label}:{tuple(shape)}").random_raw(count)
    # The top 24 bits, centred: exact in float32, symmetric around 0, within (-1, 1).
    half = np.float32(2.0 ** (_UNIFORM_BITS - 1))
    centred = ((raw >> np.uint64(64 - _UNIFORM_BITS)).astype(np.float32) + np.float32(0.5) - half) / half
    return (centred * _SQRT3).reshape(tuple(shape))


def _weight_gain(name: str) -> float:
    return ATTENTION_GAIN if ".attn.q." in name or ".attn.kv." in name else 1.0


def tensor_values(name: str, shape: Sequence[int], seed: int = SEED) -> np.ndarray:
    """The float32 value of the timm tensor `name` of `shape` (PyTorch layout)."""
    noise = unit_noise(seed, name, shape)
    if name.endswith(".bias"):
        return noise * np.float32(BIAS_NOISE)
    if len(shape) == 1:  # a LayerNorm scale
        return np.float32(1.0) + noise * np.float32(NORM_SCALE_NOISE)
    fan_in = math.prod(shape[1:])  # (out, in) or (out, in / groups, kh, kw)
    return noise * np.float32(_weight_gain(name) / math.sqrt(fan_in))


def seeded_state_dict(layout: Layout, seed: int = SEED) -> dict[str, np.ndarray]:
    """A timm-named float32 state dict: one `tensor_values` per (name, shape) of `layout`."""
    return {name: tensor_values(name, tuple(shape), seed) for name, shape in layout}


def weight_sums(state: dict[str, np.ndarray], layout: Layout) -> np.ndarray:
    """Float64 sum of every tensor, in `layout` order: the fingerprint a fixture stores."""
    return np.array([float(state[name].sum(dtype=np.float64)) for name, _ in layout])


def seeded_images(height: int, width: int, batch: int, seed: int = SEED) -> np.ndarray:
    """Float32 NHWC images: uint8 pixels from the seed, as ``(pixels - 127.5) / 64`` (exact)."""
    raw = _stream(seed, f"images:{batch}x{height}x{width}").random_raw(batch * height * width * 3)
    pixels = (raw >> np.uint64(56)).astype(np.float32).reshape(batch, height, width, 3)
    return (pixels - np.float32(127.5)) / np.float32(64.0)


def layout_of(shapes: Iterable[tuple[str, Sequence[int]]]) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) pairs with plain-int shapes, as stored in a fixture's JSON layout."""
    return [(str(name), tuple(int(d) for d in shape)) for name, shape in shapes]
