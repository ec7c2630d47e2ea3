"""mmseg's names for the Semantic FPN weights: the key map that plugs the segmenter into
`keras_pvt.checkpoints.heads` (`SEMANTIC_FPN`), which loads mmseg checkpoints all or nothing.

An mmseg checkpoint of PVTv2-Seg holds ``backbone.*`` (the official PVT-v2 naming, handled by
`keras_pvt.checkpoints`), and for the head:

* ``neck.lateral_convs.{i}.conv.{weight,bias}``, ``neck.fpn_convs.{i}.conv.{weight,bias}``
  (mmcv ConvModules without norm);
* ``decode_head.scale_heads.{i}.{j}.conv.weight`` and ``...{j}.bn.{weight,bias,running_mean,
  running_var}``: ``scale_heads[i]`` is an ``nn.Sequential`` of ConvModules, each followed by an
  ``Upsample`` module when level i is coarser than the first, so conv block k sits at index
  ``j = 2k`` there and at ``j = k`` in level 0;
* ``decode_head.conv_seg.{weight,bias}``.

``*.num_batches_tracked`` counters are skipped.
"""

from __future__ import annotations

from typing import Any

from keras_pvt.checkpoints.assign import Target, add_layer, conv_kernel, unchanged
from keras_pvt.checkpoints.heads import HeadCheckpoint
from keras_pvt.segmentation.backbone import segmenter_backbone
from keras_pvt.segmentation.fpn import FEATURE_STRIDES, scale_head_length

CLASSIFIER_KEY = "decode_head.conv_seg.weight"
_BN_PARTS = {
    "weight": "gamma",
    "bias": "beta",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
}


def scale_head_index(level: int, block: int, strides: tuple[int, ...] = FEATURE_STRIDES) -> int:
    """Index of conv block `block` of ``scale_heads[level]`` in its Sequential (Upsamples between)."""
    return 2 * block if strides[level] != strides[0] else block


def head_targets(model: Any, levels: int = len(FEATURE_STRIDES)) -> dict[str, Target]:
    """mmseg name -> `Target` for every weight and BatchNorm statistic of the neck and head."""
    targets: dict[str, Target] = {}
    for i in range(levels):
        add_layer(targets, f"neck.lateral_convs.{i}.conv", model.get_layer(f"neck_lateral{i}"), conv_kernel)
        add_layer(targets, f"neck.fpn_convs.{i}.conv", model.get_layer(f"neck_fpn{i}"), conv_kernel)
    for i in range(levels):
        for k in range(scale_head_length(i)):
            prefix = f"decode_head.scale_heads.{i}.{scale_head_index(i, k)}"
            add_layer(targets, f"{prefix}.conv", model.get_layer(f"head_scale{i}_conv{k}"), conv_kernel)
            norm = model.get_layer(f"head_scale{i}_bn{k}")
            for part, attribute in _BN_PARTS.items():
                targets[f"{prefix}.bn.{part}"] = Target(getattr(norm, attribute), unchanged)
    add_layer(targets, "decode_head.conv_seg", model.get_layer("conv_seg"), conv_kernel)
    return targets


SEMANTIC_FPN = HeadCheckpoint(
    task="a PVT-v2 Semantic FPN (mmseg)",
    head_targets=head_targets,
    backbone=segmenter_backbone,
    classifier=CLASSIFIER_KEY,
    rebuild="segmenter (backbone, num_classes, fpn_channels, head_channels)",
    backbone_hint="For backbone-only (ImageNet) weights use backbone_weights=.",
)
