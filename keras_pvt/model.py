"""The PVT-v2 variants as `keras.applications`-style builders: `PVTV2B0` ... `PVTV2B5`, `PVTV2B2Li`.

Each is a plain function with the `keras.applications` arguments and one shared docstring
(`BASE_DOCSTRING`, filled per variant); all build through `PVT_V2` (`keras_pvt.builder`, also
importable from here).
"""

from __future__ import annotations

from typing import Any

import keras

from keras_pvt.builder import PVT_V2, pyramid_outputs
from keras_pvt.presets import VARIANTS

__all__ = [
    "BASE_DOCSTRING",
    "PVTV2B0",
    "PVTV2B1",
    "PVTV2B2",
    "PVTV2B3",
    "PVTV2B4",
    "PVTV2B5",
    "PVT_V2",
    "PVTV2B2Li",
    "pyramid_outputs",
]

InputShape = tuple[int | None, int | None, int] | None

BASE_DOCSTRING = """Instantiates the {label} architecture (Pyramid Vision Transformer v2).

Reference: Wang et al., "PVT v2: Improved Baselines with Pyramid Vision Transformer"
(Computational Visual Media, 2022; https://arxiv.org/abs/2106.13797). The ImageNet-1k weights
are timm's release of the official checkpoint, downloaded once and hash-checked
(`keras_pvt.checkpoints.pretrained`); {label} has {params:,} parameters with its 1000-class head.

Input: channels-last (NHWC) images of any size of at least the architecture's minimum (29x29
pixels for the preset variants), any channel count. By default (`include_preprocessing=False`)
the model expects images normalised with `keras_pvt.preprocess_input` (ImageNet mean/std, timm's
convention); with `include_preprocessing=True` it takes raw pixels in [0, 255] (float or uint8)
and normalises them itself, as `keras.applications.ConvNeXtTiny` does. keras.applications
defaults to True; keras-pvt defaults to False because its data pipelines, checkpoints, exports and
saved models all take normalised images. `keras_pvt.preprocess_input(images, model=model)` gives
the right input for either kind.

Args:
    include_top: end with the ImageNet classifier (final norm, mean over tokens, Dense).
        Defaults to True.
    weights: None (random initialisation), "imagenet" (needs the checkpoint online or in the
        cache), or the path of a checkpoint (`.safetensors`, `.pth`, `.npz`, `.weights.h5`,
        `.keras`; official, timm or Hugging Face naming). Defaults to "imagenet".
    input_tensor: optional Keras tensor (e.g. the output of `keras.Input()`) to use as the
        model's input.
    input_shape: optional (height, width, channels); None sizes accept any size. Defaults to
        (None, None, 3). Other channel counts take RGB weights with the first layer adapted.
    pooling: with `include_top=False`: None (the last stage map, (B, H/32, W/32, {width})),
        "avg" or "max" (a pooled (B, {width}) vector).
    classes: classifier width, with `include_top=True`; `weights="imagenet"` needs 1000.
        Defaults to 1000.
    classifier_activation: activation of the classifier output (a name, a callable or None
        for logits). Defaults to "softmax".
    include_preprocessing: put the ImageNet normalisation inside the model (see above).
        Defaults to False.
    name: the model name. Defaults to "{default_name}".
    features_only: return the four stage maps as a dict {{"stage1": (B, H/4, W/4, C1), ...,
        "stage4": (B, H/32, W/32, C4)}} instead (for dense heads; keras-hub's "P2" ... "P5"
        names via `keras_pvt.pyramid_outputs(model)` or `PVT_V2(..., feature_names="pyramid")`).
        Defaults to False.
    drop_path_rate: stochastic depth rate of the last block (linear from 0). Defaults to 0.0;
        the ImageNet training recipe used {drop_path_rate}.

Returns:
    A functional `keras.Model`.
"""


def _build(variant: str, arguments: dict[str, Any]) -> keras.Model:
    """`PVT_V2` of `variant` with a builder's arguments (its `locals()`)."""
    return PVT_V2(variant, **arguments)


def PVTV2B0(
    include_top: bool = True,
    weights: str | None = "imagenet",
    input_tensor: Any = None,
    input_shape: InputShape = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    *,
    include_preprocessing: bool = False,
    name: str = "pvt_v2_b0",
    features_only: bool = False,
    drop_path_rate: float = 0.0,
) -> keras.Model:
    return _build("b0", locals())


def PVTV2B1(
    include_top: bool = True,
    weights: str | None = "imagenet",
    input_tensor: Any = None,
    input_shape: InputShape = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    *,
    include_preprocessing: bool = False,
    name: str = "pvt_v2_b1",
    features_only: bool = False,
    drop_path_rate: float = 0.0,
) -> keras.Model:
    return _build("b1", locals())


def PVTV2B2(
    include_top: bool = True,
    weights: str | None = "imagenet",
    input_tensor: Any = None,
    input_shape: InputShape = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    *,
    include_preprocessing: bool = False,
    name: str = "pvt_v2_b2",
    features_only: bool = False,
    drop_path_rate: float = 0.0,
) -> keras.Model:
    return _build("b2", locals())


def PVTV2B2Li(
    include_top: bool = True,
    weights: str | None = "imagenet",
    input_tensor: Any = None,
    input_shape: InputShape = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    *,
    include_preprocessing: bool = False,
    name: str = "pvt_v2_b2_li",
    features_only: bool = False,
    drop_path_rate: float = 0.0,
) -> keras.Model:
    return _build("b2_li", locals())


def PVTV2B3(
    include_top: bool = True,
    weights: str | None = "imagenet",
    input_tensor: Any = None,
    input_shape: InputShape = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    *,
    include_preprocessing: bool = False,
    name: str = "pvt_v2_b3",
    features_only: bool = False,
    drop_path_rate: float = 0.0,
) -> keras.Model:
    return _build("b3", locals())


def PVTV2B4(
    include_top: bool = True,
    weights: str | None = "imagenet",
    input_tensor: Any = None,
    input_shape: InputShape = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    *,
    include_preprocessing: bool = False,
    name: str = "pvt_v2_b4",
    features_only: bool = False,
    drop_path_rate: float = 0.0,
) -> keras.Model:
    return _build("b4", locals())


def PVTV2B5(
    include_top: bool = True,
    weights: str | None = "imagenet",
    input_tensor: Any = None,
    input_shape: InputShape = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    *,
    include_preprocessing: bool = False,
    name: str = "pvt_v2_b5",
    features_only: bool = False,
    drop_path_rate: float = 0.0,
) -> keras.Model:
    return _build("b5", locals())


# Parameter counts with the 1000-class head (tests/test_model.py checks them against timm's).
_PARAMETERS = {
    "b0": 3_666_760,
    "b1": 14_009_000,
    "b2": 25_362_856,
    "b2_li": 22_553_512,
    "b3": 45_238_696,
    "b4": 62_556_072,
    "b5": 81_956_008,
}
BUILDERS: dict[str, Any] = {
    "b0": PVTV2B0,
    "b1": PVTV2B1,
    "b2": PVTV2B2,
    "b2_li": PVTV2B2Li,
    "b3": PVTV2B3,
    "b4": PVTV2B4,
    "b5": PVTV2B5,
}
for _variant, _builder in BUILDERS.items():
    _builder.__doc__ = BASE_DOCSTRING.format(
        label="PVT-v2-" + _variant.upper().replace("_LI", "-Li"),
        params=_PARAMETERS[_variant],
        width=VARIANTS[_variant].config.embed_dims[-1],
        default_name=f"pvt_v2_{_variant}",
        drop_path_rate=VARIANTS[_variant].drop_path_rate,
    )
del _variant, _builder
