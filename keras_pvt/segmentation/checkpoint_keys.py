"""mmseg's names for the Semantic FPN weights, and the Keras variable each one goes to.

An mmseg checkpoint of PVTv2-Seg holds ``backbone.*`` (the official PVT-v2 naming, handled by
`keras_pvt.checkpoints`), and for the head:

* ``neck.lateral_convs.{i}.conv.{weight,bias}``, ``neck.fpn_convs.{i}.conv.{weight,bias}``
  (mmcv ConvModules without norm);
* ``decode_head.scale_heads.{i}.{j}.conv.weight`` and ``...{j}.bn.{weight,bias,running_mean,
  running_var}``: ``scale_heads[i]`` is an ``nn.Sequential`` of ConvModules, each followed by an
  ``Upsample`` module when level i is coarser than the first, so conv block k sits at index
  ``j = 2k`` there and at ``j = k`` in level 0;
* ``decode_head.conv_seg.{weight,bias}``.

Tensors are in PyTorch layout: conv kernels (O, I, kh, kw) become Keras' (kh, kw, I, O).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from keras_pvt.segmentation.fpn import FEATURE_STRIDES, scale_head_length

BACKBONE_PREFIX = "backbone."
HEAD_PREFIXES = ("neck.", "decode_head.")
CLASSIFIER_KEY = "decode_head.conv_seg.weight"
_BN_PARTS = {
    "weight": "gamma",
    "bias": "beta",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
}


@dataclasses.dataclass
class HeadTarget:
    """One Keras variable of the head and whether its tensor is a conv kernel (layout changes)."""

    variable: Any
    kernel: bool

    @property
    def torch_shape(self) -> tuple[int, ...]:
        shape = tuple(int(d) for d in self.variable.shape)
        return (shape[3], shape[2], shape[0], shape[1]) if self.kernel else shape

    def to_keras(self, value: np.ndarray) -> np.ndarray:
        return value.transpose(2, 3, 1, 0) if self.kernel else value


def scale_head_index(level: int, block: int, strides: tuple[int, ...] = FEATURE_STRIDES) -> int:
    """Index of conv block `block` of ``scale_heads[level]`` in its Sequential (Upsamples between)."""
    return 2 * block if strides[level] != strides[0] else block


def head_targets(model: Any, levels: int = len(FEATURE_STRIDES)) -> dict[str, HeadTarget]:
    """mmseg name -> `HeadTarget` for every weight and BatchNorm statistic of the neck and head."""
    targets: dict[str, HeadTarget] = {}
    for i in range(levels):
        _conv(targets, f"neck.lateral_convs.{i}.conv", model.get_layer(f"neck_lateral{i}"))
        _conv(targets, f"neck.fpn_convs.{i}.conv", model.get_layer(f"neck_fpn{i}"))
    for i in range(levels):
        for k in range(scale_head_length(i)):
            prefix = f"decode_head.scale_heads.{i}.{scale_head_index(i, k)}"
            _conv(targets, f"{prefix}.conv", model.get_layer(f"head_scale{i}_conv{k}"))
            norm = model.get_layer(f"head_scale{i}_bn{k}")
            for part, attribute in _BN_PARTS.items():
                targets[f"{prefix}.bn.{part}"] = HeadTarget(getattr(norm, attribute), kernel=False)
    _conv(targets, "decode_head.conv_seg", model.get_layer("conv_seg"))
    return targets


def _conv(targets: dict[str, HeadTarget], name: str, layer: Any) -> None:
    targets[f"{name}.weight"] = HeadTarget(layer.kernel, kernel=True)
    if layer.bias is not None:
        targets[f"{name}.bias"] = HeadTarget(layer.bias, kernel=False)


def split_state(state: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(backbone tensors without their ``backbone.`` prefix, every other tensor)."""
    backbone = {k[len(BACKBONE_PREFIX) :]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}
    rest = {k: v for k, v in state.items() if not k.startswith(BACKBONE_PREFIX)}
    return backbone, rest
