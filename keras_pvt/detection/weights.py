"""`RetinaNet(weights=...)`: mmdet RetinaNet checkpoints of PVT-v2, or our own Keras files.

The detector plugs its key map (`checkpoint_keys`) into `keras_pvt.checkpoints.heads`, which loads
all or nothing: neck and head keys checked first, then the backbone (official, timm or HF naming
under ``backbone.``), the neck and head last; nothing is executed from the file.

mmdet's own `PyramidVisionTransformerV2` naming (``layers.{s}.{i}``) is renamed to the official one
first. That backbone uses LayerNorm eps 1e-6 in its patch embeddings and spatial reductions where
the official PVT-v2 (and keras-pvt) uses 1e-5: such a checkpoint loads with a warning.
"""

from __future__ import annotations

import warnings
from typing import Any

from keras_pvt.checkpoints.heads import (
    HeadCheckpoint,
    checkpoint_classes,
    load_head_checkpoint,
    read_head_weights,
)
from keras_pvt.detection.anchors import ANCHORS_PER_LOCATION
from keras_pvt.detection.checkpoint_keys import (
    CLASSIFIER_KEY,
    head_targets,
    is_mmdet_backbone,
    mmdet_backbone_to_official,
)
from keras_pvt.segmentation.backbone import segmenter_backbone

__all__ = [
    "MMDET_EPSILON_WARNING",
    "RETINANET",
    "checkpoint_num_classes",
    "load_detector_weights",
    "read_detector_state",
]

MMDET_EPSILON_WARNING = (
    "This checkpoint uses mmdet's PyramidVisionTransformerV2 naming: mmdet's backbone has LayerNorm "
    "eps 1e-6 in its patch embeddings and spatial reductions, keras-pvt (as the official PVT-v2) "
    "1e-5, so outputs differ slightly from mmdet's. The PVT-v2 paper's checkpoints are exact."
)


def official_backbone_names(state: dict[str, Any]) -> dict[str, Any]:
    """Backbone tensors in the official naming (mmdet's own naming renamed, with a warning)."""
    if not is_mmdet_backbone(state):
        return state
    warnings.warn(MMDET_EPSILON_WARNING, stacklevel=4)
    return mmdet_backbone_to_official(state)


RETINANET = HeadCheckpoint(
    task="an mmdet RetinaNet of a PVT-v2",
    head_targets=head_targets,
    backbone=segmenter_backbone,
    classifier=CLASSIFIER_KEY,
    rebuild="RetinaNet (backbone, num_classes)",
    backbone_hint="For backbone-only (ImageNet) weights use backbone_weights=.",
    rename_backbone=official_backbone_names,
    rows_per_class=ANCHORS_PER_LOCATION,
)


def read_detector_state(weights: Any) -> Any:
    """`weights` with a checkpoint path read into its state dict, so a bad file fails early."""
    return read_head_weights(weights, RETINANET)


def checkpoint_num_classes(weights: Any) -> int:
    """The class count of a RetinaNet checkpoint (``retina_cls`` rows per anchor)."""
    return checkpoint_classes(weights, RETINANET)


def load_detector_weights(model: Any, weights: Any) -> dict[str, list[str]]:
    """Load an mmdet checkpoint (a path or its state dict) or our Keras file into a `RetinaNet`.

    Returns ``{"loaded", "skipped"}`` in mmdet's names; raises `CheckpointMismatchError` listing
    missing, unexpected and mis-shaped keys; nothing is written unless everything fits.
    """
    return load_head_checkpoint(model, weights, RETINANET)
