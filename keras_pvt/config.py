"""`PVTV2Config`: the hyper-parameters that describe any PVT-v2, validated on construction."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

PER_STAGE_FIELDS = ("embed_dims", "num_heads", "mlp_ratios", "depths", "sr_ratios")


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    return tuple(size)  # type: ignore[return-value]


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
        for name in PER_STAGE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise ValueError(f"`{name}` must be a sequence with one value per stage, got {value!r}.")
            object.__setattr__(self, name, tuple(value))
        if not isinstance(self.img_size, int):
            object.__setattr__(self, "img_size", tuple(self.img_size))
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise `ValueError` naming the first problem found and how to fix it."""
        problems = self.problems()
        if problems:
            raise ValueError("Invalid PVTV2Config:\n  - " + "\n  - ".join(problems))

    def problems(self) -> list[str]:
        """Every problem with this config, as human-readable sentences (empty if valid)."""
        out: list[str] = []
        if not _is_int(self.num_stages) or self.num_stages < 1:
            return [f"`num_stages` must be a positive integer, got {self.num_stages!r}."]
        for name in PER_STAGE_FIELDS:
            value = getattr(self, name)
            if len(value) != self.num_stages:
                out.append(
                    f"`{name}` has {len(value)} values but `num_stages` is {self.num_stages}: "
                    f"give exactly one value per stage."
                )
        if out:
            return out
        out += _positive_ints(self, ("patch_size", "in_channels"))
        if not _is_int(self.num_classes) or self.num_classes < 0:
            out.append(f"`num_classes` must be an integer >= 0 (0 = no head), got {self.num_classes!r}.")
        sizes = _pair(self.img_size)
        if len(sizes) != 2 or not all(_is_int(s) and s > 0 for s in sizes):
            out.append(f"`img_size` must be a positive int or (height, width), got {self.img_size!r}.")
        for name in ("embed_dims", "num_heads", "depths", "sr_ratios"):
            for i, v in enumerate(getattr(self, name)):
                if not _is_int(v) or v < 1:
                    out.append(f"`{name}[{i}]` must be a positive integer, got {v!r}.")
        for i, v in enumerate(self.mlp_ratios):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
                out.append(f"`mlp_ratios[{i}]` must be a positive number, got {v!r}.")
            elif int(self.embed_dims[i] * v) < 1:
                out.append(f"`mlp_ratios[{i}]` = {v} gives an MLP with no hidden units.")
        if out:
            return out
        for i, (dim, heads) in enumerate(zip(self.embed_dims, self.num_heads)):
            if dim % heads:
                out.append(
                    f"stage {i + 1}: `embed_dims[{i}]` = {dim} is not divisible by `num_heads[{i}]` = "
                    f"{heads}; choose a width that is a multiple of the head count "
                    f"(e.g. {heads * max(1, round(dim / heads))})."
                )
        for name in ("drop_rate", "attn_drop_rate", "drop_path_rate"):
            rate = getattr(self, name)
            if not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
                out.append(f"`{name}` must be in [0, 1), got {rate!r}.")
        if self.qk_scale is not None and (not isinstance(self.qk_scale, (int, float)) or self.qk_scale <= 0):
            out.append(f"`qk_scale` must be None or a positive number, got {self.qk_scale!r}.")
        if not out:
            minimum = self.min_input_size()
            small = [s for s in sizes if s < minimum]
            if small:
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
        """Smallest input side for which every stage map is non-empty and every reduction conv fits."""
        for size in range(1, 4096):
            maps = self.stage_sizes(size)
            reductions_fit = self.linear or all(m >= r for m, r in zip(maps, self.sr_ratios))
            if min(maps) >= 1 and reductions_fit:
                return size
        raise ValueError("No input size up to 4096 fits this configuration.")

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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_ints(config: PVTV2Config, names: Sequence[str]) -> list[str]:
    return [
        f"`{name}` must be a positive integer, got {getattr(config, name)!r}."
        for name in names
        if not _is_int(getattr(config, name)) or getattr(config, name) < 1
    ]
