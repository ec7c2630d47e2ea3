"""`PVTV2Config`: the hyper-parameters that describe any PVT-v2, validated on construction."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from keras_pvt.limits import (
    ARGUMENT_RULES,
    MAX_IMAGE_SIZE,
    MAX_NUM_CLASSES,
    MAX_STAGES,
    MAX_WIDTH,
    Rule,
    as_bool,
    as_int,
    as_rate,
    as_scale,
    block_parameters,
    check_parameters,
    int_rule,
    stage_parameters,
)

PER_STAGE_FIELDS = ("embed_dims", "num_heads", "mlp_ratios", "depths", "sr_ratios")


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, numbers.Integral):  # NumPy integers too
        return int(size), int(size)
    return tuple(int(side) for side in size)  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True)
class PVTV2Config:
    """Architecture of a PVT-v2 model, with the fields of the reference implementation.

    Args:
        img_size: nominal input size (int or (height, width)); the model accepts any size, this one is
            used for the default fixed-shape export and for the FLOP count.
        patch_size: kernel of the first overlapping patch embedding (stride 4, padding
            ``patch_size // 2``). Later stages use kernel 3, stride 2, padding 1.
        in_channels: input channels.
        num_classes: classifier width; 0 means no head.
        embed_dims, num_heads, mlp_ratios, depths, sr_ratios: one value per stage.
        qkv_bias: bias in the query and key/value projections.
        qk_scale: attention scale; None means ``head_dim ** -0.5``.
        drop_rate: dropout before the classifier and after projections.
        attn_drop_rate: dropout on the attention weights.
        drop_path_rate: stochastic depth rate of the last block (linearly spaced from 0).
        num_stages: number of stages.
        linear: linear spatial-reduction attention (the "Li" variants): 7x7 adaptive pooling instead
            of the strided reduction convolution, and a ReLU in the MLP.
    """

    img_size: int | tuple[int, int] = 224
    patch_size: int = 7
    in_channels: int = 3
    num_classes: int = 1000
    embed_dims: tuple[int, ...] = (64, 128, 256, 512)
    num_heads: tuple[int, ...] = (1, 2, 4, 8)
    mlp_ratios: tuple[float, ...] = (4, 4, 4, 4)
    qkv_bias: bool = True
    qk_scale: float | None = None
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    depths: tuple[int, ...] = (3, 4, 6, 3)
    sr_ratios: tuple[int, ...] = (8, 4, 2, 1)
    num_stages: int = 4
    linear: bool = False

    def __post_init__(self) -> None:
        problems = self._normalise()
        if not problems:
            problems = self.problems()
        if problems:
            raise ValueError("Invalid PVTV2Config:\n  - " + "\n  - ".join(problems))

    def _normalise(self) -> list[str]:
        """Check every field's type and sanity limit, storing plain Python values; the problems found."""
        out: list[str] = []

        def store(name: str, rule: Any, value: Any) -> Any:
            try:
                return rule(name, value)
            except ValueError as error:
                out.append(str(error))
                return value

        for name, rule in _SCALAR_RULES.items():
            object.__setattr__(self, name, store(name, rule, getattr(self, name)))
        for name, rule in _STAGE_RULES.items():
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                out.append(f"`{name}` must be a sequence with one value per stage, got {value!r}.")
                continue
            if len(value) > MAX_STAGES:
                out.append(
                    f"`{name}` has {len(value)} values, above the sanity limit of {MAX_STAGES} stages."
                )
                continue
            values = tuple(store(f"{name}[{i}]", rule, v) for i, v in enumerate(value))
            object.__setattr__(self, name, values)
        return out

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise `ValueError` naming the first problem found and how to fix it."""
        problems = self.problems()
        if problems:
            raise ValueError("Invalid PVTV2Config:\n  - " + "\n  - ".join(problems))

    def problems(self) -> list[str]:
        """Every problem between the (type-checked) fields, as sentences with the fix (empty if valid)."""
        out = [
            f"`{name}` has {len(getattr(self, name))} values but `num_stages` is {self.num_stages}: "
            f"give exactly one value per stage."
            for name in PER_STAGE_FIELDS
            if len(getattr(self, name)) != self.num_stages
        ]
        if out:
            return out
        for i, (dim, heads, ratio) in enumerate(zip(self.embed_dims, self.num_heads, self.mlp_ratios)):
            if dim % heads:
                out.append(
                    f"stage {i + 1}: `embed_dims[{i}]` = {dim} is not divisible by `num_heads[{i}]` = "
                    f"{heads}; choose a width that is a multiple of the head count "
                    f"(e.g. {heads * max(1, round(dim / heads))})."
                )
            if int(dim * ratio) < 1:
                out.append(f"`mlp_ratios[{i}]` = {ratio} gives an MLP with no hidden units.")
        if out:
            return out
        try:
            check_parameters(self.num_parameters(), "this config")
        except ValueError as error:
            return [str(error)]
        minimum = self.min_input_size()
        if any(s < minimum for s in _pair(self.img_size)):
            out.append(
                f"`img_size` {self.img_size!r} is too small: this architecture needs at least "
                f"{minimum}x{minimum} pixels (stride 4, then 2 per stage, and spatial-reduction "
                f"kernels {list(self.sr_ratios)}). Use a larger image."
            )
        return out

    # ------------------------------------------------------------------ geometry
    @property
    def num_blocks(self) -> int:
        return sum(self.depths)

    @property
    def strides(self) -> tuple[int, ...]:
        """Total stride of each stage's output map (4, 8, 16, 32 for four stages)."""
        return tuple(4 * 2**i for i in range(self.num_stages))

    def stage_sizes(self, size: int) -> list[int]:
        """Side length of every stage map for an input side of `size` pixels."""
        sizes = []
        for i in range(self.num_stages):
            kernel, stride = (self.patch_size, 4) if i == 0 else (3, 2)
            size = (size + 2 * (kernel // 2) - kernel) // stride + 1
            sizes.append(size)
        return sizes

    def min_input_size(self) -> int:
        """Smallest input side (height and width each) for which the model computes real features.

        Every stage map must be non-empty and, unless `linear`, at least `sr_ratios[i]` wide: the
        reduction conv (kernel = stride = sr_ratio) on a smaller map yields no key/value tokens, and
        the attention output is then zeros or NaN. Solved backwards from the last stage: a conv of
        kernel k, stride s and padding k // 2 makes an m-wide map from ``(m - 1) * s + k - 2 * (k // 2)``
        pixels.
        """
        size = 1
        for i in reversed(range(self.num_stages)):
            kernel, stride = (self.patch_size, 4) if i == 0 else (3, 2)
            needed = max(size, 1 if self.linear else self.sr_ratios[i])
            size = max(1, (needed - 1) * stride + kernel - 2 * (kernel // 2))
        return size

    def num_parameters(self) -> int:
        """Parameters of the model this config builds, counted without building it (`num_classes`
        0: no head); equal to `model.count_params()`."""
        total, channels = 0, self.in_channels
        for i, dim in enumerate(self.embed_dims):
            kernel = self.patch_size if i == 0 else 3
            block = block_parameters(dim, self.mlp_ratios[i], self.sr_ratios[i], self.linear, self.qkv_bias)
            total += stage_parameters(channels, dim, self.depths[i], kernel, block)
            channels = dim
        return total + (channels * self.num_classes + self.num_classes if self.num_classes else 0)

    def drop_path_rates(self) -> list[float]:
        """Per-block stochastic depth rates, linearly spaced from 0 to `drop_path_rate`."""
        n = self.num_blocks
        if n == 1:
            return [0.0]
        return [self.drop_path_rate * i / (n - 1) for i in range(n)]

    def flops(self, size: int | tuple[int, int] | None = None) -> int:
        """FLOPs (2 x multiply-accumulates) of one forward pass at `size`, counted analytically.

        Counts convolutions, dense layers and the two attention matmuls; norms, activations and
        softmax are left out, as is usual for published GFLOP figures.
        """
        height, width = _pair(size if size is not None else self.img_size)
        total, channels = 0, self.in_channels
        for i, (hh, ww) in enumerate(zip(self.stage_sizes(height), self.stage_sizes(width))):
            kernel = self.patch_size if i == 0 else 3
            dim, sr, n = self.embed_dims[i], self.sr_ratios[i], hh * ww
            hidden = int(dim * self.mlp_ratios[i])
            if self.linear:
                m, reduction = 49, 2 * 49 * dim * dim
            elif sr > 1:
                m = (hh // sr) * (ww // sr)
                reduction = 2 * m * sr * sr * dim * dim
            else:
                m, reduction = n, 0
            block = (
                2 * n * dim * dim  # q
                + reduction
                + 2 * m * dim * 2 * dim  # kv
                + 2 * 2 * n * m * dim  # q @ k^T and attn @ v
                + 2 * n * dim * dim  # proj
                + 2 * 2 * n * dim * hidden  # fc1, fc2
                + 2 * n * 9 * hidden  # depthwise conv
            )
            total += 2 * n * kernel * kernel * channels * dim + block * self.depths[i]
            channels = dim
        if self.num_classes:
            total += 2 * channels * self.num_classes
        return total

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (lists, not tuples), suitable for JSON and `get_config`."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PVTV2Config:
        """Inverse of `to_dict`; unknown keys are an error, so typos do not pass silently."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown PVTV2Config field(s) {unknown}; valid fields are {sorted(known)}.")
        return cls(**dict(values))

    def replace(self, **changes: Any) -> PVTV2Config:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _image_size(name: str, value: Any) -> int | tuple[int, int]:
    pair = isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes))
    try:
        if not pair:
            return as_int(name, value, MAX_IMAGE_SIZE)
        if len(value) == 2:
            return tuple(as_int(f"{name}[{i}]", v, MAX_IMAGE_SIZE) for i, v in enumerate(value))
    except ValueError as error:
        raise ValueError(f"`{name}` must be a positive int or (height, width): {error}") from None
    raise ValueError(f"`{name}` must be a positive int or (height, width), got {value!r}.")


_SCALAR_RULES: dict[str, Rule] = {
    "img_size": _image_size,
    "num_stages": int_rule(MAX_STAGES),
    "patch_size": ARGUMENT_RULES["patch_size"],
    "in_channels": int_rule(MAX_WIDTH),
    "num_classes": int_rule(MAX_NUM_CLASSES, minimum=0),
    "qkv_bias": as_bool,
    "qk_scale": as_scale,
    "drop_rate": as_rate,
    "attn_drop_rate": as_rate,
    "drop_path_rate": as_rate,
    "linear": as_bool,
}
_STAGE_RULES: dict[str, Rule] = {
    "embed_dims": ARGUMENT_RULES["dim"],
    "num_heads": ARGUMENT_RULES["num_heads"],
    "mlp_ratios": ARGUMENT_RULES["mlp_ratio"],
    "depths": ARGUMENT_RULES["depth"],
    "sr_ratios": ARGUMENT_RULES["sr_ratio"],
}
