"""Infer the PVT-v2 architecture (and preset name) of a canonical state dict from its tensor shapes."""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from keras_pvt.config import PVTV2Config
from keras_pvt.presets import PRESETS

# The architecture fields that tensor shapes determine; `num_heads` is the one they cannot.
SHAPE_FIELDS = (
    "embed_dims",
    "depths",
    "mlp_ratios",
    "sr_ratios",
    "linear",
    "patch_size",
    "in_channels",
    "qkv_bias",
)


def infer_config(state: Mapping[str, np.ndarray]) -> tuple[str | None, PVTV2Config]:
    """``(preset name, config)`` describing the canonical state dict `state`.

    Widths, depths, MLP ratios, reduction ratios, linear attention, stem kernel, input channels,
    bias use and class count all follow from tensor shapes. The head count does not (it changes no
    shape): it is taken from the preset with the same shapes, or ValueError asks for an explicit
    config when no preset matches.
    """
    fields, sr_ratios, num_classes = read_architecture(state)
    name = match_preset(fields, sr_ratios)
    if name is not None:
        return name, PRESETS[name].replace(num_classes=num_classes)
    raise ValueError(
        "The checkpoint matches no PVT-v2 preset (embed_dims "
        f"{fields['embed_dims']}, depths {fields['depths']}, mlp_ratios {fields['mlp_ratios']}, "
        f"linear {fields['linear']}) and the number of attention heads cannot be read from tensor "
        "shapes. Build the model from an explicit config instead, e.g. `PVT_V2(PVTV2Config("
        "embed_dims=..., num_heads=..., ...), weights=path)`, pass `config=` to "
        "`keras_pvt.checkpoints.from_checkpoint`, or give `keras-pvt convert` a `--config FILE.json`."
    )


def read_architecture(
    state: Mapping[str, np.ndarray],
) -> tuple[dict[str, object], tuple[int, ...], int]:
    """``(shape fields, sr_ratios, num_classes)`` read from the tensor shapes of `state`."""
    stages = sorted({int(m[1]) for k in state if (m := re.match(r"^stage(\d+)\.", k))})
    if not stages or stages != list(range(1, len(stages) + 1)):
        raise ValueError(f"Cannot infer the architecture: stages found {stages}, expected 1..N.")
    embed_dims, depths, mlp_ratios, sr_ratios = [], [], [], []
    linear = False
    for i in stages:
        dim = int(_get(state, f"stage{i}.patch_embed.proj.weight").shape[0])
        blocks = {int(m[1]) for k in state if (m := re.match(rf"^stage{i}\.block(\d+)\.", k))}
        if not blocks:
            raise ValueError(f"Cannot infer the architecture: stage {i} has no blocks.")
        fc1 = _get(state, f"stage{i}.block0.mlp.fc1.weight")
        sr = state.get(f"stage{i}.block0.attn.sr.weight")
        linear = linear or (sr is not None and sr.shape[-1] == 1)
        embed_dims.append(dim)
        depths.append(len(blocks))
        mlp_ratios.append(_ratio(int(fc1.shape[0]), dim))
        sr_ratios.append(int(sr.shape[-1]) if sr is not None and sr.shape[-1] > 1 else 1)
    stem = _get(state, "stage1.patch_embed.proj.weight")
    head = state.get("head.weight")
    fields = {
        "embed_dims": tuple(embed_dims),
        "depths": tuple(depths),
        "mlp_ratios": tuple(mlp_ratios),
        "linear": linear,
        "patch_size": int(stem.shape[-1]),
        "in_channels": int(stem.shape[1]),
        "qkv_bias": "stage1.block0.attn.q.bias" in state,
        "num_stages": len(stages),
    }
    return fields, tuple(sr_ratios), int(head.shape[0]) if head is not None else 0


def shape_fields(config: PVTV2Config) -> dict[str, object]:
    """The fields of `config` that a checkpoint's tensor shapes pin down."""
    return {
        "embed_dims": tuple(config.embed_dims),
        "depths": tuple(config.depths),
        "mlp_ratios": tuple(_ratio(int(d * r), d) for d, r in zip(config.embed_dims, config.mlp_ratios)),
        "linear": config.linear,
        "patch_size": config.patch_size,
        "in_channels": config.in_channels,
        "qkv_bias": config.qkv_bias,
        "num_stages": config.num_stages,
    }


def match_preset(fields: Mapping[str, object], sr_ratios: tuple[int, ...]) -> str | None:
    """The preset whose shape-determined fields (and, if not linear, sr_ratios) equal `fields`."""
    for name, preset in PRESETS.items():
        if shape_fields(preset) != dict(fields):
            continue
        if not preset.linear and tuple(preset.sr_ratios) != sr_ratios:
            continue
        return name
    return None


def _ratio(hidden: int, dim: int) -> float | int:
    ratio = hidden / dim
    return int(ratio) if ratio == int(ratio) else ratio


def _get(state: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    if key not in state:
        raise ValueError(f"Cannot infer the architecture: the checkpoint has no `{key}` tensor.")
    return state[key]
