"""The backbone of a segmenter: a keras-pvt features model (the four stage maps), nested in it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from keras_pvt.config import PVTV2Config
from keras_pvt.model import PVT_V2
from keras_pvt.presets import canonical_variant

STAGES = ("stage1", "stage2", "stage3", "stage4")
# Stochastic depth of PVTv2-Seg's backbones (pvt_v2_b0 ... b5 all use 0.1 for Semantic FPN).
SEGMENTATION_DROP_PATH_RATE = 0.1


def segmenter_backbone(model: keras.Model) -> keras.Model:
    """The nested PVT-v2 features model of a segmenter (freeze it with ``.trainable = False``)."""
    backbone = find_backbone(model)
    if backbone is None:
        raise ValueError(f"Model {model.name!r} holds no keras-pvt backbone; build it with SemanticFPN.")
    return backbone


def find_backbone(model: keras.Model) -> keras.Model | None:
    for layer in model.layers:
        if isinstance(layer, keras.Model) and any(inner.name == "stage1" for inner in layer.layers):
            return layer
    return None


def build_backbone(
    backbone: Any, input_shape: Any, drop_path_rate: float | None
) -> tuple[str | None, keras.Model]:
    """(preset name or None, the features model) for `backbone`."""
    if isinstance(backbone, keras.Model):
        if drop_path_rate is not None:
            raise ValueError(
                "`drop_path_rate` cannot change a features model that is already built; build it "
                "with PVT_V2(..., features_only=True, drop_path_rate=...)."
            )
        if not any(layer.name == "stage1" for layer in backbone.layers):
            raise TypeError(not_a_features_model(backbone))
        return _variant_of(backbone.name), backbone
    if isinstance(backbone, str):
        variant = canonical_variant(backbone)
    elif isinstance(backbone, (PVTV2Config, Mapping)):
        variant = None
    else:
        raise TypeError(
            "`backbone` must be a preset name ('b0' ... 'b5', 'b2_li'), a PVTV2Config or a keras-pvt "
            f"features model (PVT_V2(..., features_only=True)), got {backbone!r}."
        )
    rate = SEGMENTATION_DROP_PATH_RATE if drop_path_rate is None else drop_path_rate
    model = PVT_V2(backbone, features_only=True, input_shape=input_shape, drop_path_rate=rate)
    return variant, model


def _variant_of(model_name: str) -> str | None:
    """The preset of a features model named by PVT_V2 ("pvt_v2_b0" -> "b0"), else None."""
    if not model_name.startswith("pvt_v2_"):
        return None
    try:
        return canonical_variant(model_name[len("pvt_v2_") :])
    except ValueError:
        return None


def not_a_features_model(model: Any) -> str:
    return (
        f"`backbone` model {getattr(model, 'name', model)!r} is not a keras-pvt features model: it "
        "must return the dict of the four stage maps {'stage1', ..., 'stage4'}. Build it with "
        "PVT_V2(variant, features_only=True), or pass a preset name."
    )


def load_backbone_weights(features_model: keras.Model, weights: Any, variant: str | None) -> None:
    from keras_pvt.checkpoints.load import load_weights
    from keras_pvt.checkpoints.variant import model_config

    config = model_config(features_model)
    load_weights(features_model, weights, config=config, variant=variant, head="auto")
