"""`SemanticFPN`: a PVT-v2 backbone with the paper's Semantic FPN head, NHWC images -> pixel logits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from keras_pvt.checkpoints.heads import checkpoint_classes, load_head_checkpoint, read_head_weights
from keras_pvt.config import PVTV2Config
from keras_pvt.input_checks import require_image_batches
from keras_pvt.layers import ResizeBilinearLike
from keras_pvt.limits import MAX_NUM_CLASSES, MAX_WIDTH, as_int, as_rate, is_integral
from keras_pvt.segmentation.backbone import (
    STAGES,
    build_backbone,
    find_backbone,
    load_backbone_weights,
    not_a_features_model,
)
from keras_pvt.segmentation.checkpoint_keys import SEMANTIC_FPN
from keras_pvt.segmentation.fpn import FEATURE_STRIDES, fpn_head, fpn_neck

HEADS = ("fpn",)
LOGITS_STRIDES = (1, 4)
OUTPUT_NAME = "logits"
CLASSIFIER_NAME = "conv_seg"
NAME_PREFIX = "semantic_fpn"


def SemanticFPN(
    backbone: str | PVTV2Config | Mapping[str, Any] | keras.Model = "b0",
    num_classes: int | None = 150,
    *,
    weights: Any = None,
    backbone_weights: Any = None,
    input_shape: tuple[int | None, int | None, int] | None = None,
    input_tensor: Any = None,
    head: str = "fpn",
    fpn_channels: int = 256,
    head_channels: int = 128,
    dropout: float = 0.1,
    logits_stride: int = 1,
    drop_path_rate: float | None = None,
    name: str | None = None,
) -> keras.Model:
    """PVT-v2 + Semantic FPN (mmseg's `FPN` neck and `FPNHead`, as in the PVTv2-Seg configs).

    Args:
        backbone: a preset name ("b0" ... "b5", "b2_li"), a `PVTV2Config` (or its dict), or a
            keras-pvt features model (``PVT_V2(..., features_only=True)``), used as it is.
        num_classes: classifier width (ADE20K: 150). None takes it from the `weights` checkpoint.
        weights: None, an mmseg checkpoint of the whole segmenter (``.pth`` with ``backbone.*``,
            ``neck.*``, ``decode_head.*`` keys, or such a state dict), or a Keras ``.weights.h5`` /
            ``.keras`` file of this architecture; see `load_segmenter_weights`.
        backbone_weights: the backbone's weights, anything `PVT_V2(weights=...)` takes ("imagenet",
            a timm / official / HF checkpoint). Loaded before `weights`.
        input_shape: (height, width, channels); default ``(None, None, 3)``: any size.
        input_tensor: optional Keras tensor to use as the model input.
        head: "fpn" (the paper's Semantic FPN).
        fpn_channels, head_channels: the neck's (256) and the head's (128) widths.
        dropout: channel dropout before the classifier (mmseg's ``Dropout2d(0.1)``).
        logits_stride: 1: logits at the input size (mmseg's inference output); 4: the head's
            stride-4 logits before that resize (cheaper training; the loss resizes them).
        drop_path_rate: the backbone's stochastic depth; default 0.1 (PVTv2-Seg).
        name: model name; default "semantic_fpn_<variant>".

    Returns a functional model from images normalised like the classifier
    (`keras_pvt.preprocess_input`) to float32 logits ``(B, H, W, num_classes)`` (no softmax), the
    output layer named "logits"; the backbone is a nested model (`segmenter_backbone`).
    """
    logits_stride, fpn_channels, head_channels, dropout = _check_options(
        head, logits_stride, fpn_channels, head_channels, dropout
    )
    weights = read_head_weights(weights, SEMANTIC_FPN)  # a bad file fails before anything is built
    if num_classes is None:
        num_classes = checkpoint_classes(weights, SEMANTIC_FPN)
    try:
        num_classes = as_int("num_classes", num_classes, MAX_NUM_CLASSES)
    except ValueError as error:
        raise ValueError(f"{error} None takes it from the checkpoint given as weights=.") from None
    variant, features_model = build_backbone(backbone, input_shape, drop_path_rate)
    if backbone_weights is not None:
        load_backbone_weights(features_model, backbone_weights, variant)
    inputs = _model_input(features_model, input_shape, input_tensor)
    features = features_model(inputs)
    if not isinstance(features, Mapping) or set(features) != set(STAGES):
        raise TypeError(not_a_features_model(features_model))
    levels = fpn_neck([features[stage] for stage in STAGES], fpn_channels)
    logits = fpn_head(levels, head_channels, num_classes, dropout, FEATURE_STRIDES)
    if logits_stride == 1:
        logits = ResizeBilinearLike(name="resize_to_input")([logits, inputs])
    outputs = keras.layers.Activation("linear", dtype="float32", name=OUTPUT_NAME)(logits)
    default_name = f"{NAME_PREFIX}_{variant}" if variant else NAME_PREFIX
    source = inputs if input_tensor is None else keras.utils.get_source_inputs(input_tensor)
    model = keras.Model(source, outputs, name=name or default_name)
    if weights is not None:
        load_segmenter_weights(model, weights)
    return require_image_batches(model)


def load_segmenter_weights(model: keras.Model, weights: Any) -> dict[str, list[str]]:
    """Load an mmseg checkpoint (a path or its state dict) or our Keras file into a `SemanticFPN`.

    All or nothing (`keras_pvt.checkpoints.heads.load_head_checkpoint`); returns ``{"loaded",
    "skipped"}`` in mmseg's names.
    """
    return load_head_checkpoint(model, weights, SEMANTIC_FPN)


def is_segmenter(model: Any) -> bool:
    """True for a model built by `SemanticFPN` (its output layer "logits", a "conv_seg" classifier
    and a nested keras-pvt backbone)."""
    if not isinstance(model, keras.Model) or len(model.outputs) != 1:
        return False
    names = {layer.name for layer in model.layers}
    return (
        OUTPUT_NAME in names
        and CLASSIFIER_NAME in names
        and len(model.outputs[0].shape) == 4
        and model.outputs[0]._keras_history[0].name == OUTPUT_NAME
        and find_backbone(model) is not None
    )


def _check_options(
    head: str, logits_stride: int, fpn_channels: int, head_channels: int, dropout: float
) -> tuple[int, int, int, float]:
    """The options as plain Python values (NumPy integers and floats accepted), or ValueError."""
    if head not in HEADS:
        raise ValueError(f"`head` must be one of {HEADS}, got {head!r}.")
    if not is_integral(logits_stride) or logits_stride not in LOGITS_STRIDES:
        raise ValueError(
            f"`logits_stride` must be 1 (logits at the input size) or 4 (the head's stride-4 "
            f"logits), got {logits_stride!r}."
        )
    fpn_channels = as_int("fpn_channels", fpn_channels, MAX_WIDTH)
    head_channels = as_int("head_channels", head_channels, MAX_WIDTH)
    return int(logits_stride), fpn_channels, head_channels, as_rate("dropout", dropout)


def _model_input(features_model: keras.Model, input_shape: Any, input_tensor: Any) -> Any:
    """The segmenter's input: `input_tensor`, or a new Input of `input_shape` (default the backbone's)."""
    if input_tensor is not None:
        if not keras.backend.is_keras_tensor(input_tensor):
            return keras.Input(tensor=input_tensor, shape=input_shape, name="images")
        return input_tensor
    shape = tuple(input_shape) if input_shape is not None else tuple(features_model.inputs[0].shape[1:])
    return keras.Input(shape=shape, name="images")
