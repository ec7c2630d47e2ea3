"""`PVT_V2`: the functional graph of any PVT-v2 (classifier, pooled, last map or the four stage maps).

The per-variant entry points (`PVTV2B0` ... `PVTV2B5`, `PVTV2B2Li`) are in `keras_pvt.model`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from keras_pvt.checkpoints.load import check_weights, load_weights
from keras_pvt.config import PVTV2Config
from keras_pvt.images import pixel_normalization
from keras_pvt.input_checks import check_image_size, require_image_batches
from keras_pvt.layers import ImageSizeCheck, PVTStage
from keras_pvt.presets import canonical_variant, get_config

FIRST_STRIDE = 4
LATER_PATCH_SIZE = 3
LATER_STRIDE = 2
FEATURE_NAMES = ("stages", "pyramid")
PREPROCESSING_LAYER = "pixel_normalization"


def stage_name(index: int) -> str:
    """The layer name (and default `features_only` key) of stage `index` (0-based): "stage1" ..."""
    return f"stage{index + 1}"


def pyramid_name(index: int) -> str:
    """keras-hub's pyramid level of stage `index` (0-based): "P2" (stride 4) ... "P5" (stride 32)."""
    return f"P{index + 2}"


def PVT_V2(
    config: PVTV2Config | Mapping[str, Any] | str = "b0",
    *,
    include_top: bool = True,
    weights: str | None = None,
    input_tensor: Any = None,
    input_shape: tuple[int | None, int | None, int] | None = None,
    pooling: str | None = None,
    classes: int | None = None,
    classifier_activation: str | None = "softmax",
    include_preprocessing: bool = False,
    name: str | None = None,
    features_only: bool = False,
    feature_names: str = "stages",
    drop_path_rate: float | None = None,
) -> keras.Model:
    """Build a PVT-v2 as a functional `keras.Model` (NHWC input, any spatial size by default).

    Args:
        config: a `PVTV2Config`, its dict form, or a preset name ("b0" ... "b5", "b2_li").
        include_top: end with the classifier (final stage norm, mean over tokens, dropout, Dense).
        weights: None (random init), "imagenet", or a path to a checkpoint (`.safetensors`, `.pth`,
            `.npz`, `.weights.h5`, `.keras`); see `keras_pvt.checkpoints.load`.
        input_tensor: optional Keras tensor to use as the model input.
        input_shape: (height, width, channels); None dims accept any size. Default
            ``(None, None, in_channels)``: one model for every square or non-square size. Any
            channel count builds (it replaces ``config.in_channels``); RGB weights then load with
            their first layer adapted (see `keras_pvt.checkpoints.load.load_weights`).
        pooling: with ``include_top=False`` (and not `features_only`): None returns the last stage
            map (B, H/32, W/32, C), "avg" or "max" a pooled vector.
        classes: classifier width; defaults to ``config.num_classes``. 0 means no head.
        classifier_activation: activation of the classifier output (computed in float32).
        include_preprocessing: put the ImageNet normalisation inside the model (a
            `keras.layers.Normalization` named "pixel_normalization", before the size check): the
            model then takes raw pixels in [0, 255] (float or integer) and `preprocess_input(x,
            model=model)` passes them through. Default False: the model takes images normalised by
            `keras_pvt.preprocess_input`, as every keras-pvt data pipeline, export and checkpoint
            expects (keras.applications defaults to True; see docs/models.md).
        name: model name; defaults to "pvt_v2" or "pvt_v2_<variant>".
        features_only: return the stage maps (after each stage's LayerNorm) as a dict
            ``{"stage1": (B, H/4, W/4, C1), ..., "stage4": (B, H/32, W/32, C4)}``.
        feature_names: the keys of the `features_only` dict: "stages" ("stage1" ... "stage4", the
            default) or "pyramid" (keras-hub's "P2" ... "P5", named by stride 2**level).
        drop_path_rate: override the config's stochastic depth rate.

    Every model also carries keras-hub's ``pyramid_outputs`` attribute (`pyramid_outputs` below),
    so it works as the ``image_encoder`` of keras-hub's `RetinaNetBackbone` (docs/detection.md).
    """
    variant, config = _resolve_config(config)
    config = _with_overrides(config, classes, drop_path_rate, head=include_top and not features_only)
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"`pooling` must be None, 'avg' or 'max', got {pooling!r}.")
    if feature_names not in FEATURE_NAMES:
        raise ValueError(f"`feature_names` must be one of {FEATURE_NAMES}, got {feature_names!r}.")
    check_weights(weights, config, variant)  # before building: a bad `weights` fails fast

    inputs = _model_input(config, input_tensor, input_shape)
    if inputs.shape[-1] != config.in_channels:  # the input decides, as in keras.applications
        config = config.replace(in_channels=int(inputs.shape[-1]))
    x = inputs
    if include_preprocessing:
        x = pixel_normalization(config.in_channels, name=PREPROCESSING_LAYER)(x)
    features = _stages(config, x)
    if features_only:
        rename = pyramid_name if feature_names == "pyramid" else stage_name
        outputs: Any = {rename(i): value for i, value in enumerate(features.values())}
    else:
        outputs = _top(config, features[stage_name(config.num_stages - 1)], pooling, classifier_activation)
    default_name = f"pvt_v2_{variant}" if variant else "pvt_v2"
    model = keras.Model(_source_inputs(input_tensor, inputs), outputs, name=name or default_name)
    if keras.backend.backend() == "tensorflow":  # `model.fit` keeps its speed with no extra call
        from keras_pvt.rewrites.training import rewrite_for_training

        rewrite_for_training(model)
    if weights is not None:
        load_weights(model, weights, config=config, variant=variant)
    # keras-hub's `FeaturePyramidBackbone.pyramid_outputs`: what `RetinaNetBackbone(image_encoder=...)`
    # and keras-hub's other dense heads read (with `model.inputs`).
    model.pyramid_outputs = pyramid_outputs(model)
    return require_image_batches(model)


def pyramid_outputs(model: keras.Model) -> dict[str, Any]:
    """keras-hub's ``pyramid_outputs`` of a keras-pvt model: ``{"P2": stage1 map, ..., "P5": ...}``.

    The symbolic outputs of the model's stage layers (strides 4 ... 32), for heads written against
    keras-hub's names: ``keras.Model(model.inputs, pyramid_outputs(model))``. Works on any model
    `PVT_V2` built (a classifier too), also after a `.keras` or preset round trip.
    """
    stages = [layer for layer in model.layers if isinstance(layer, PVTStage)]
    if not stages:
        raise ValueError(
            f"Model {model.name!r} has no PVT-v2 stage layers at its top level; pass a model built "
            "by keras_pvt (PVT_V2, PVTV2B0, ...) or the backbone inside your model."
        )
    return {pyramid_name(i): layer.output for i, layer in enumerate(stages)}


def _resolve_config(config: PVTV2Config | Mapping[str, Any] | str) -> tuple[str | None, PVTV2Config]:
    """The preset name (None for a custom config) and the config."""
    if isinstance(config, str):
        return canonical_variant(config), get_config(config)
    if isinstance(config, Mapping):
        return None, PVTV2Config.from_dict(config)
    if not isinstance(config, PVTV2Config):
        raise TypeError(f"`config` must be a PVTV2Config, a dict or a preset name, got {config!r}.")
    return None, config


def _with_overrides(
    config: PVTV2Config, classes: int | None, drop_path_rate: float | None, *, head: bool
) -> PVTV2Config:
    changes: dict[str, Any] = {}
    if classes is not None:
        changes["num_classes"] = classes
    if drop_path_rate is not None:
        changes["drop_path_rate"] = drop_path_rate
    if not head:
        changes["num_classes"] = 0
    return config.replace(**changes) if changes else config


def _stages(config: PVTV2Config, inputs: Any) -> dict[str, Any]:
    """The size check and the four stages; each stage's (normed) map by name."""
    x = ImageSizeCheck(config.min_input_size(), name="image_size_check")(inputs)
    features = {}
    for i, rate_slice in enumerate(_split_rates(config)):
        x = PVTStage(
            config.embed_dims[i],
            config.depths[i],
            config.num_heads[i],
            mlp_ratio=config.mlp_ratios[i],
            sr_ratio=config.sr_ratios[i],
            linear=config.linear,
            patch_size=config.patch_size if i == 0 else LATER_PATCH_SIZE,
            stride=FIRST_STRIDE if i == 0 else LATER_STRIDE,
            qkv_bias=config.qkv_bias,
            qk_scale=config.qk_scale,
            drop=config.drop_rate,
            attn_drop=config.attn_drop_rate,
            drop_path=rate_slice,
            name=stage_name(i),
        )(x)
        features[stage_name(i)] = x
    return features


def _top(config: PVTV2Config, x: Any, pooling: str | None, classifier_activation: str | None) -> Any:
    """The classifier (mean over tokens, dropout, Dense, activation in float32), or the pooling."""
    if config.num_classes:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dropout(config.drop_rate, name="head_drop")(x)
        x = keras.layers.Dense(
            config.num_classes,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="head",
        )(x)
        return keras.layers.Activation(classifier_activation, dtype="float32", name="predictions")(x)
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def _source_inputs(input_tensor: Any, inputs: Any) -> Any:
    """The model's inputs: `input_tensor`'s source input when one was given (as
    keras.applications: a single input as the tensor itself, not a one-element list)."""
    if input_tensor is None:
        return inputs
    sources = keras.utils.get_source_inputs(input_tensor)
    return sources[0] if len(sources) == 1 else sources


def _split_rates(config: PVTV2Config) -> list[list[float]]:
    rates = config.drop_path_rates()
    out, start = [], 0
    for depth in config.depths:
        out.append(rates[start : start + depth])
        start += depth
    return out


def _model_input(config: PVTV2Config, input_tensor: Any, input_shape: Any) -> Any:
    """The model's `keras.Input`, after checking its rank, channel axis and size against `config`."""
    if input_shape is not None:
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError(
                f"`input_shape` must be (height, width, channels) in NHWC order, got {input_shape}."
            )
    if input_tensor is None:
        inputs = keras.Input(shape=input_shape or (None, None, config.in_channels), name="images")
    elif keras.backend.is_keras_tensor(input_tensor):
        inputs = input_tensor
    else:
        inputs = keras.Input(tensor=input_tensor, shape=input_shape, name="images")
    shape = tuple(inputs.shape)
    if len(shape) != 4:
        raise ValueError(f"PVT-v2 takes a batch of NHWC images (rank 4); the input has shape {shape}.")
    if shape[-1] is None:
        raise ValueError(
            f"The input's channel count is unknown (shape {shape}); the first layer needs it. Give "
            "it as the last axis (channels-last, NHWC): input_shape=(None, None, channels)."
        )
    check_image_size(shape[1], shape[2], config.min_input_size())
    return inputs
