"""The PVT-v2 configuration a training run names (preset, config or dict), and its size check."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keras_pvt.config import PVTV2Config
from keras_pvt.presets import canonical_variant, get_config


def resolve_config(variant: str | PVTV2Config | Mapping[str, Any]) -> tuple[PVTV2Config, str]:
    """(the config, the preset name or "custom") of a preset name, a `PVTV2Config` or its dict."""
    if isinstance(variant, PVTV2Config):
        return variant, "custom"
    if isinstance(variant, Mapping):
        return PVTV2Config.from_dict(variant), "custom"
    return get_config(variant), canonical_variant(variant)


def resolve_backbone(
    variant: str | PVTV2Config | Mapping[str, Any], drop_path_rate: float | None, default_rate: float
) -> tuple[PVTV2Config, str]:
    """`resolve_config` of a dense-prediction backbone, its stochastic depth `drop_path_rate`
    (None: `default_rate`, the task's)."""
    config, variant_key = resolve_config(variant)
    rate = default_rate if drop_path_rate is None else drop_path_rate
    return config.replace(drop_path_rate=rate), variant_key


def check_image_size(config: PVTV2Config, image_size: int) -> None:
    """`ValueError` when `image_size` is below the smallest input `config` accepts."""
    minimum = config.min_input_size()
    if image_size < minimum:
        raise ValueError(
            f"image_size {image_size} is too small for this PVT-v2: it needs at least {minimum}."
        )
