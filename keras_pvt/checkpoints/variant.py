"""Which PVT-v2 a config or a canonical state dict is: architecture fields, preset matching, inference."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from keras_pvt.config import PVTV2Config
from keras_pvt.presets import PRESETS

Fields = dict[str, object]


def infer_config(state: Mapping[str, np.ndarray]) -> tuple[str | None, PVTV2Config]:
    """``(preset name, config)`` describing the canonical state dict `state`.

    Widths, depths, MLP ratios, reduction ratios, linear attention, stem kernel, input channels,
    bias use and class count all follow from tensor shapes. The head count does not (it changes no
    shape): it is taken from the preset with the same shapes, or ValueError asks for an explicit
    config when no preset matches.
    """
    fields, num_classes = read_architecture(state)
    name = preset_of(fields)
    if name is not None:
        return name, PRESETS[name].replace(num_classes=num_classes)
    raise ValueError(
        "The checkpoint matches no PVT-v2 preset (embed_dims "
        f"{fields['embed_dims']}, depths {fields['depths']}, mlp_ratios {fields['mlp_ratios']}, "
        f"linear {fields['linear']}) and the number of attention heads cannot be read from tensor "
        "shapes. Build the model from an explicit config instead, e.g. `PVT_V2(PVTV2Config("
        "embed_dims=..., num_heads=..., ...), weights=path)`, pass `config=` to "
        "`keras_pvt.from_checkpoint`, or give `keras-pvt convert` a `--config FILE.json`."
    )


def preset_of(architecture: PVTV2Config | Mapping[str, object]) -> str | None:
    """The name of the preset `architecture` is, or None.

    A config is compared on every field that changes its weights or what they compute, except its
    channel count (RGB weights adapt to any count); image size, class count and rates do not
    count. A mapping (the fields `read_architecture` reads from a checkpoint) is compared on the
    fields it has: tensors do not record the head count or the attention scale.
    """
    if isinstance(architecture, PVTV2Config):
        wanted = {k: v for k, v in _architecture_fields(architecture).items() if k != "in_channels"}
    else:
        wanted = dict(architecture)
    for name, preset in PRESETS.items():
        fields = _architecture_fields(preset)
        if all(key in fields and fields[key] == value for key, value in wanted.items()):
            return name
    return None


def model_config(model: Any) -> PVTV2Config | None:
    """The `PVTV2Config` of the PVT-v2 in `model` (nested models too), read from its stage layers.

    None when `model` holds no stages, or stages that make no valid config. The class count is 0:
    the config describes the backbone.
    """
    stages = _stage_layers(model)
    if not stages:
        return None
    first = stages[0]
    try:
        return PVTV2Config(
            embed_dims=tuple(stage.dim for stage in stages),
            depths=tuple(stage.depth for stage in stages),
            num_heads=tuple(stage.num_heads for stage in stages),
            mlp_ratios=tuple(stage.mlp_ratio for stage in stages),
            sr_ratios=tuple(stage.sr_ratio for stage in stages),
            linear=first.linear,
            patch_size=first.patch_size,
            qkv_bias=first.qkv_bias,
            qk_scale=first.qk_scale,
            in_channels=int(first.patch_embed.proj.kernel.shape[2]),
            num_stages=len(stages),
            num_classes=0,
        )
    except ValueError:
        return None


def _stage_layers(model: Any) -> list[Any]:
    """The layers "stage1", "stage2", ... of `model`, or of the first nested model that has them."""
    layers = {layer.name: layer for layer in getattr(model, "layers", [])}
    stages = []
    while f"stage{len(stages) + 1}" in layers:
        stages.append(layers[f"stage{len(stages) + 1}"])
    if stages:
        return stages
    for layer in layers.values():
        nested = _stage_layers(layer) if hasattr(layer, "get_layer") else []
        if nested:
            return nested
    return []


def _architecture_fields(config: PVTV2Config) -> Fields:
    """The fields of `config` that fix its weights' shapes (`shape_fields`) and what they compute."""
    return {**shape_fields(config), "num_heads": tuple(config.num_heads), "qk_scale": config.qk_scale}


def shape_fields(config: PVTV2Config) -> Fields:
    """The fields of `config` that a checkpoint's tensor shapes pin down (as `read_architecture`)."""
    fields: Fields = {
        "embed_dims": tuple(config.embed_dims),
        "depths": tuple(config.depths),
        "mlp_ratios": tuple(_ratio(int(d * r), d) for d, r in zip(config.embed_dims, config.mlp_ratios)),
        "linear": config.linear,
        "patch_size": config.patch_size,
        "in_channels": config.in_channels,
        "qkv_bias": config.qkv_bias,
        "num_stages": config.num_stages,
    }
    if not config.linear:  # linear attention pools to 7x7 whatever the ratio: no tensor shows it
        fields["sr_ratios"] = tuple(config.sr_ratios)
    return fields


def read_architecture(state: Mapping[str, np.ndarray]) -> tuple[Fields, int]:
    """``(shape fields, num_classes)`` read from the tensor shapes of the canonical `state`."""
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
    fields: Fields = {
        "embed_dims": tuple(embed_dims),
        "depths": tuple(depths),
        "mlp_ratios": tuple(mlp_ratios),
        "linear": linear,
        "patch_size": int(stem.shape[-1]),
        "in_channels": int(stem.shape[1]),
        "qkv_bias": "stage1.block0.attn.q.bias" in state,
        "num_stages": len(stages),
    }
    if not linear:
        fields["sr_ratios"] = tuple(sr_ratios)
    return fields, int(head.shape[0]) if head is not None else 0


def _ratio(hidden: int, dim: int) -> float | int:
    ratio = hidden / dim
    return int(ratio) if ratio == int(ratio) else ratio


def _get(state: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    if key not in state:
        raise ValueError(f"Cannot infer the architecture: the checkpoint has no `{key}` tensor.")
    return state[key]
