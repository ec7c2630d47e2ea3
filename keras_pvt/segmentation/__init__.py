"""Semantic segmentation with PVT-v2: the paper's Semantic FPN (mmseg's FPN neck + FPNHead).

    model = keras_pvt.segmentation.SemanticFPN("b0", num_classes=150, backbone_weights="imagenet")
    logits = model(images)  # (B, H, W, 150) float32, images normalised by keras_pvt.preprocess_input

`weights=` takes mmseg checkpoints of PVTv2-Seg (read without torch, nothing executed) and our own
Keras files. The loss and metrics for training: `losses`, `metrics`.
"""

from __future__ import annotations

from keras_pvt.segmentation.backbone import segmenter_backbone
from keras_pvt.segmentation.losses import SegmentationCrossEntropy
from keras_pvt.segmentation.metrics import MeanIoU, PixelAccuracy
from keras_pvt.segmentation.model import SemanticFPN, is_segmenter, load_segmenter_weights

__all__ = [
    "MeanIoU",
    "PixelAccuracy",
    "SegmentationCrossEntropy",
    "SemanticFPN",
    "is_segmenter",
    "load_segmenter_weights",
    "segmenter_backbone",
]
