"""mmdet's names for the RetinaNet neck and head weights, and mmdet's own PVT-v2 backbone naming.

A RetinaNet checkpoint (the PVT-v2 paper's, or mmdet's) holds ``backbone.*`` and:

* ``neck.lateral_convs.{i}.conv.{weight,bias}`` (i = 0 ... 2: stages 2 ... 4) and
  ``neck.fpn_convs.{i}.conv.{weight,bias}`` (i = 0 ... 4; 3 and 4 are the extra P6, P7 convs);
* ``bbox_head.{cls,reg}_convs.{i}.conv.{weight,bias}``, ``bbox_head.retina_cls.{weight,bias}``,
  ``bbox_head.retina_reg.{weight,bias}``.

The paper's checkpoints name the backbone as the official PVT-v2 code (``patch_embed1``,
``block1.0``, ``norm1``: `keras_pvt.checkpoints` reads it). mmdet's `PyramidVisionTransformerV2`
names it ``layers.{s}.0`` (patch embedding, ``projection``), ``layers.{s}.1.{j}`` (blocks: q and kv
merged into ``attn.attn.in_proj_*``, ``attn.attn.out_proj``, the MLP as ``ffn.layers.{0,1,4}`` 1x1 /
depthwise / 1x1 convs) and ``layers.{s}.2`` (stage norm); `mmdet_backbone_to_official` renames it
(the inverse of mmdet's `pvt_convert`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from keras_pvt.checkpoints.assign import Target, add_layer, conv_kernel

CLASSIFIER_KEY = "bbox_head.retina_cls.weight"
MMDET_BACKBONE_ANCHOR = "layers.0.0.projection.weight"


def head_targets(model: Any, num_inputs: int = 3, num_outs: int = 5) -> dict[str, Target]:
    """mmdet name -> `Target` for every weight of the neck and the RetinaHead of `model`."""
    targets: dict[str, Target] = {}
    for i in range(num_inputs):
        add_layer(targets, f"neck.lateral_convs.{i}.conv", model.get_layer(f"neck_lateral{i}"), conv_kernel)
    for i in range(num_outs):
        add_layer(targets, f"neck.fpn_convs.{i}.conv", model.get_layer(f"neck_fpn{i}"), conv_kernel)
    for branch in ("cls", "reg"):
        for i in range(_stacked_convs(model, branch)):
            add_layer(
                targets,
                f"bbox_head.{branch}_convs.{i}.conv",
                model.get_layer(f"head_{branch}_conv{i}"),
                conv_kernel,
            )
    add_layer(targets, "bbox_head.retina_cls", model.get_layer("head_retina_cls"), conv_kernel)
    add_layer(targets, "bbox_head.retina_reg", model.get_layer("head_retina_reg"), conv_kernel)
    return targets


def _stacked_convs(model: Any, branch: str) -> int:
    """How many stacked convs the head's `branch` ("cls" or "reg") has (mmdet's `stacked_convs`)."""
    names = {layer.name for layer in model.layers}
    count = 0
    while f"head_{branch}_conv{count}" in names:
        count += 1
    return count


def is_mmdet_backbone(state: Mapping[str, Any]) -> bool:
    """True for a backbone state dict in mmdet's `PyramidVisionTransformerV2` naming."""
    return MMDET_BACKBONE_ANCHOR in state


_BLOCK_PARTS = (
    (r"attn\.attn\.out_proj\.", "attn.proj."),
    (r"attn\.sr\.", "attn.sr."),
    (r"attn\.norm\.", "attn.norm."),
    (r"ffn\.layers\.0\.", "mlp.fc1."),
    (r"ffn\.layers\.1\.", "mlp.dwconv.dwconv."),
    (r"ffn\.layers\.4\.", "mlp.fc2."),
    (r"norm1\.", "norm1."),
    (r"norm2\.", "norm2."),
)


def mmdet_backbone_to_official(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """mmdet's PVT-v2 backbone names -> the official ones (q / kv split, 1x1 conv kernels as linear).

    Keys matching no rule are kept as they are, so that they show up as unexpected when loading.
    """
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        value = np.asarray(value)
        match = re.match(r"^layers\.(\d+)\.(\d+)\.(.*)$", key)
        if not match:
            out[key] = value
            continue
        stage, part, rest = int(match[1]) + 1, int(match[2]), match[3]
        if part == 0:
            out[f"patch_embed{stage}.{rest.replace('projection.', 'proj.')}"] = value
        elif part == 2:
            out[f"norm{stage}.{rest}"] = value
        else:
            _block(out, stage, rest, key, value)
    return out


def _block(out: dict[str, np.ndarray], stage: int, rest: str, key: str, value: np.ndarray) -> None:
    block = re.match(r"^(\d+)\.(.*)$", rest)
    if not block:
        out[key] = value
        return
    prefix, tail = f"block{stage}.{block[1]}.", block[2]
    in_proj = re.match(r"^attn\.attn\.in_proj_(weight|bias)$", tail)
    if in_proj:
        dim = value.shape[0] // 3
        out[f"{prefix}attn.q.{in_proj[1]}"] = value[:dim]
        out[f"{prefix}attn.kv.{in_proj[1]}"] = value[dim:]
        return
    for pattern, replacement in _BLOCK_PARTS:
        if re.match(pattern, tail):
            name = prefix + re.sub(pattern, replacement, tail, count=1)
            if name.endswith(("mlp.fc1.weight", "mlp.fc2.weight")) and value.ndim == 4:
                value = value.reshape(value.shape[:2])
            out[name] = value
            return
    out[key] = value
