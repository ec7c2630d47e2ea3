"""Object detection with PVT-v2: the paper's RetinaNet (mmdet's FPN neck and RetinaHead).

    model = keras_pvt.detection.RetinaNet("b0", num_classes=80, backbone_weights="imagenet")
    detections = model.predict(images)  # {"boxes", "confidence", "labels", "num_detections"}

`weights=` takes mmdet RetinaNet checkpoints of PVT-v2 (read without torch, nothing executed) and
our own Keras files. For training, `raw_model(model)` (or ``raw_outputs=True``) gives the head's
outputs over the anchors of `anchor_boxes`; `box_coder` encodes and decodes box regressions;
mmdet's assigner and losses (`RetinaNetFocalLoss`, `RetinaNetBoxLoss`) train it, and COCO mAP
(`evaluate_coco`, the `CocoEvaluation` callback; pycocotools) evaluates it.
"""

from __future__ import annotations

from keras_pvt.detection.anchors import anchor_boxes, feature_sizes
from keras_pvt.detection.assigner import max_iou_assign
from keras_pvt.detection.box_coder import decode, encode
from keras_pvt.detection.callbacks import CocoEvaluation
from keras_pvt.detection.coco_eval import coco_metrics, evaluate_coco
from keras_pvt.detection.layers import RetinaNetDetections
from keras_pvt.detection.losses import RetinaNetBoxLoss, RetinaNetFocalLoss
from keras_pvt.detection.model import RetinaNet, detector_model, is_detector, raw_model
from keras_pvt.detection.weights import load_detector_weights

__all__ = [
    "CocoEvaluation",
    "RetinaNet",
    "RetinaNetBoxLoss",
    "RetinaNetDetections",
    "RetinaNetFocalLoss",
    "anchor_boxes",
    "coco_metrics",
    "decode",
    "detector_model",
    "encode",
    "evaluate_coco",
    "feature_sizes",
    "is_detector",
    "load_detector_weights",
    "max_iou_assign",
    "raw_model",
]
