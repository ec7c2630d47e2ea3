"""`RetinaNet`: a PVT-v2 backbone with mmdet's FPN and RetinaHead, NHWC images -> detections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from keras_pvt.config import PVTV2Config
from keras_pvt.detection.anchors import num_base_anchors
from keras_pvt.detection.head import BOX_OUTPUT, CLS_OUTPUT, retina_head
from keras_pvt.detection.layers import RetinaNetDetections
from keras_pvt.detection.postprocess import IOU_THRESHOLD, MAX_DETECTIONS, PRE_NMS_TOP_K, SCORE_THRESHOLD
from keras_pvt.detection.weights import checkpoint_num_classes, load_detector_weights, read_detector_state
from keras_pvt.input_checks import require_image_batches
from keras_pvt.limits import MAX_NUM_CLASSES, MAX_WIDTH, as_int
from keras_pvt.segmentation.backbone import (
    STAGES,
    build_backbone,
    load_backbone_weights,
    not_a_features_model,
)
from keras_pvt.segmentation.fpn import fpn_neck

# As the PVT-v2 paper's `retinanet_pvt_v2_b*_fpn_1x_coco.py`: the FPN takes stages 2-4
# (`start_level=1`) and adds P6 from stage 4 and P7 from P6 (`add_extra_convs='on_input'`, no ReLU).
NECK_STAGES = STAGES[1:]
EXTRA_LEVELS = 2
COCO_CLASSES = 80
DETECTIONS_NAME = "detections"
NAME_PREFIX = "retinanet"


def RetinaNet(
    backbone: str | PVTV2Config | Mapping[str, Any] | keras.Model = "b0",
    num_classes: int | None = None,
    weights: Any = None,
    *,
    backbone_weights: Any = None,
    input_shape: tuple[int | None, int | None, int] | None = None,
    input_tensor: Any = None,
    raw_outputs: bool = False,
    fpn_channels: int = 256,
    head_channels: int = 256,
    stacked_convs: int = 4,
    score_threshold: float = SCORE_THRESHOLD,
    iou_threshold: float = IOU_THRESHOLD,
    pre_nms_top_k: int = PRE_NMS_TOP_K,
    max_detections: int = MAX_DETECTIONS,
    bounding_box_format: str = "xyxy",
    drop_path_rate: float | None = None,
    name: str | None = None,
) -> keras.Model:
    """PVT-v2 + RetinaNet (mmdet's `FPN` and `RetinaHead`, as the PVT-v2 paper's detection configs).

    Args:
        backbone: a preset name ("b0" ... "b5", "b2_li"), a `PVTV2Config` (or its dict), or a
            keras-pvt features model (``PVT_V2(..., features_only=True)``), used as it is.
        num_classes: foreground classes (COCO: 80). None takes it from the `weights` checkpoint,
            or 80 without one.
        weights: None, an mmdet checkpoint of the whole detector (``.pth`` with ``backbone.*``,
            ``neck.*``, ``bbox_head.*`` keys, or such a state dict), or a Keras ``.weights.h5`` /
            ``.keras`` file of this architecture; see `keras_pvt.detection.load_detector_weights`.
        backbone_weights: the backbone's weights, anything `PVT_V2(weights=...)` takes. Loaded
            before `weights`.
        input_shape: (height, width, channels); default ``(None, None, 3)``: any size.
        input_tensor: optional Keras tensor to use as the model input.
        raw_outputs: False: the model returns the detections (below). True: it returns the
            head's raw outputs ``{"cls_logits": (B, N, num_classes), "box_deltas": (B, N, 4)}``
            (for training), N the anchors of `keras_pvt.detection.anchor_boxes` in the same order.
            `raw_model` / `detector_model` switch between the two, sharing the weights.
        fpn_channels, head_channels, stacked_convs: the neck's width, the head's width and its
            convs per branch (256, 256, 4).
        score_threshold, iou_threshold, pre_nms_top_k, max_detections: mmdet's test config
            (0.05, class-wise NMS at 0.5, 1000 per level, 100 per image).
        bounding_box_format: the detections' box format ("xyxy" in input pixels; any format of
            `keras.utils.bounding_boxes.convert_format`).
        drop_path_rate: the backbone's stochastic depth; default 0.1 (as the paper's configs).
        name: model name; default "retinanet_<variant>".

    Returns a functional model from images normalised like the classifier
    (`keras_pvt.preprocess_input`) to ``{"boxes": (B, 100, 4), "confidence": (B, 100),
    "labels": (B, 100), "num_detections": (B,)}`` (padded with -1, best first), or the raw outputs.
    """
    if not isinstance(raw_outputs, bool):
        raise TypeError(f"`raw_outputs` must be True or False, got {raw_outputs!r}.")
    fpn_channels = as_int("fpn_channels", fpn_channels, MAX_WIDTH)
    head_channels = as_int("head_channels", head_channels, MAX_WIDTH)
    stacked_convs = as_int("stacked_convs", stacked_convs, 64, minimum=0)
    weights = read_detector_state(weights)  # a bad file fails before anything is built
    if num_classes is None:
        num_classes = checkpoint_num_classes(weights) if isinstance(weights, Mapping) else COCO_CLASSES
    num_classes = as_int("num_classes", num_classes, MAX_NUM_CLASSES)
    postprocessing = RetinaNetDetections(
        score_threshold=score_threshold,
        iou_threshold=iou_threshold,
        pre_nms_top_k=pre_nms_top_k,
        max_detections=max_detections,
        bounding_box_format=bounding_box_format,
        name=DETECTIONS_NAME,
    )  # checks its options before the backbone is built
    variant, features_model = build_backbone(backbone, input_shape, drop_path_rate)
    if backbone_weights is not None:
        load_backbone_weights(features_model, backbone_weights, variant)
    inputs = _model_input(features_model, input_shape, input_tensor)
    features = features_model(inputs)
    if not isinstance(features, Mapping) or set(features) != set(STAGES):
        raise TypeError(not_a_features_model(features_model))
    levels = fpn_neck([features[stage] for stage in NECK_STAGES], fpn_channels, extra_levels=EXTRA_LEVELS)
    raw = retina_head(levels, num_classes, num_base_anchors(), head_channels, stacked_convs)
    default_name = f"{NAME_PREFIX}_{variant}" if variant else NAME_PREFIX
    source = inputs if input_tensor is None else keras.utils.get_source_inputs(input_tensor)
    outputs = raw if raw_outputs else postprocessing([inputs, raw[CLS_OUTPUT], raw[BOX_OUTPUT]])
    model = keras.Model(source, outputs, name=name or default_name)
    if weights is not None:
        load_detector_weights(model, weights)
    return require_image_batches(model)


def raw_model(model: keras.Model) -> keras.Model:
    """The head's raw outputs ``{"cls_logits", "box_deltas"}`` of a RetinaNet, same layers and weights."""
    outputs = {key: model.get_layer(key).output for key in (CLS_OUTPUT, BOX_OUTPUT)}
    return require_image_batches(keras.Model(model.inputs[0], outputs, name=model.name))


def detector_model(model: keras.Model, **options: Any) -> keras.Model:
    """A RetinaNet (raw or not) with its post-processing: `RetinaNetDetections(**options)` on its outputs."""
    images = model.inputs[0]
    layer = RetinaNetDetections(name=DETECTIONS_NAME, **options)
    cls_logits, box_deltas = (model.get_layer(key).output for key in (CLS_OUTPUT, BOX_OUTPUT))
    return require_image_batches(
        keras.Model(images, layer([images, cls_logits, box_deltas]), name=model.name)
    )


def is_detector(model: Any) -> bool:
    """True for a model built by `RetinaNet` (raw or with its detections)."""
    if not isinstance(model, keras.Model):
        return False
    names = {layer.name for layer in model.layers}
    return {CLS_OUTPUT, BOX_OUTPUT, "head_retina_cls"} <= names


def _model_input(features_model: keras.Model, input_shape: Any, input_tensor: Any) -> Any:
    """The detector's input: `input_tensor`, or a new Input of `input_shape` (default the backbone's)."""
    if input_tensor is not None:
        if not keras.backend.is_keras_tensor(input_tensor):
            return keras.Input(tensor=input_tensor, shape=input_shape, name="images")
        return input_tensor
    shape = tuple(input_shape) if input_shape is not None else tuple(features_model.inputs[0].shape[1:])
    return keras.Input(shape=shape, name="images")
