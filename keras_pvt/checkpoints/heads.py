"""Checkpoints of a whole task model: a PVT-v2 backbone under a prefix plus a head, loaded all or nothing.

mmseg's segmenters (``backbone.*``, ``neck.*``, ``decode_head.*``) and mmdet's detectors
(``backbone.*``, ``neck.*``, ``bbox_head.*``) store the backbone in the official naming under
``backbone.``. A head plugs in with a `HeadCheckpoint`: its key map (checkpoint name -> `Target`, see
`assign`), where its backbone is, and its classifier's key. The head's tensors are checked first,
the backbone then loads through `load_checkpoint` (official, timm or HF naming), the head last;
nothing is written unless everything fits. Our Keras files of the whole model load as saved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from keras_pvt.checkpoints.assign import (
    Target,
    assign_values,
    check_fit,
    float32_values,
    without_bookkeeping,
)
from keras_pvt.checkpoints.errors import CheckpointMismatchError
from keras_pvt.checkpoints.keras_files import load_keras_weights
from keras_pvt.checkpoints.load import load_checkpoint, weights_file
from keras_pvt.checkpoints.readers import checkpoint_format, read_state_dict
from keras_pvt.checkpoints.variant import model_config

__all__ = ["HeadCheckpoint", "checkpoint_classes", "load_head_checkpoint", "read_head_weights"]


@dataclasses.dataclass(frozen=True)
class HeadCheckpoint:
    """How one task's checkpoints name the model's weights.

    Attributes:
        task: the model, for messages ("a PVT-v2 Semantic FPN (mmseg)").
        head_targets: the head's key map: model -> {checkpoint name: `Target`}, every weight
            and statistic of the model outside its backbone.
        backbone: model -> its nested PVT-v2 (loaded through `load_checkpoint`).
        classifier: the key whose rows are the class count ("decode_head.conv_seg.weight").
        rebuild: what to build again when a Keras file does not fit ("segmenter (backbone, ...)").
        backbone_hint: the sentence for a backbone-only checkpoint given as the whole model's.
        backbone_prefix: the prefix of the backbone's tensors.
        rename_backbone: backbone tensors -> the same in a naming `keras_pvt.checkpoints.keymaps`
            reads (e.g. mmdet's own PVT-v2 naming to the official one), or None.
        rows_per_class: the classifier's rows per class (a detector's anchors per location).
    """

    task: str
    head_targets: Callable[[Any], dict[str, Target]]
    backbone: Callable[[Any], Any]
    classifier: str
    rebuild: str
    backbone_hint: str
    backbone_prefix: str = "backbone."
    rename_backbone: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    rows_per_class: int = 1

    def split(self, state: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(backbone tensors without the prefix, every other tensor)."""
        prefix = self.backbone_prefix
        backbone = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        return backbone, {k: v for k, v in state.items() if not k.startswith(prefix)}

    def not_this_task(self, state: Mapping[str, Any]) -> str:
        sample = ", ".join(sorted(state)[:4]) or "(none)"
        return (
            f"This is not a checkpoint of {self.task} (no `{self.backbone_prefix}*` and "
            f"`{self.classifier}` keys; first keys: {sample}). {self.backbone_hint}"
        )


def read_head_weights(weights: Any, spec: HeadCheckpoint) -> Any:
    """`weights` with a PyTorch-style checkpoint path read into its state dict (Keras files, None
    and state dicts unchanged), so that a bad file fails before the model is built."""
    if weights is None or isinstance(weights, Mapping):
        return weights
    path = weights_file(
        weights,
        "None, a checkpoint path or a state dict",
        f"Pass a checkpoint of {spec.task} (.pth), a Keras .weights.h5/.keras file, or use "
        "backbone_weights= for the backbone.",
    )
    return path if checkpoint_format(path) == "keras" else read_state_dict(path)


def checkpoint_classes(weights: Any, spec: HeadCheckpoint, argument: str = "num_classes") -> int:
    """The class count of a task checkpoint (its classifier's rows), for ``argument=None``."""
    if not isinstance(weights, Mapping):
        raise ValueError(
            f"{argument}=None takes the class count from a checkpoint of {spec.task} (or its state "
            f"dict) given as weights=; got weights={weights!r}. Pass {argument}=..."
        )
    if spec.classifier not in weights:
        raise CheckpointMismatchError([spec.classifier], [], [], spec.not_this_task(weights))
    return int(np.shape(weights[spec.classifier])[0]) // spec.rows_per_class


def load_head_checkpoint(model: Any, weights: Any, spec: HeadCheckpoint) -> dict[str, list[str]]:
    """Load `weights` (a path, an already read state dict, or a Keras file) into the task `model`.

    Returns ``{"loaded", "skipped"}`` (checkpoint names). Raises `CheckpointMismatchError` listing
    missing, unexpected and mis-shaped keys (with the class count to build when only that
    differs), `CheckpointValueError`, `CheckpointReadError` or FileNotFoundError; nothing is
    written unless everything fits.
    """
    weights = read_head_weights(weights, spec)
    if isinstance(weights, Path):
        load_keras_weights(model, weights, rebuild=spec.rebuild)
        return {"loaded": [w.path for w in model.weights], "skipped": []}
    state, skipped = without_bookkeeping(weights)
    backbone_state, head_state = spec.split(state)
    if not backbone_state:
        raise CheckpointMismatchError([], [], [], spec.not_this_task(weights))
    targets = spec.head_targets(model)
    check_fit(head_state, targets, _class_count_hint(head_state, targets, spec))
    values = float32_values(head_state, targets)
    if spec.rename_backbone is not None:
        backbone_state = spec.rename_backbone(backbone_state)
    backbone = spec.backbone(model)
    try:
        report = load_checkpoint(backbone, backbone_state, config=model_config(backbone), head="auto")
    except CheckpointMismatchError as error:
        raise error.prefixed(spec.backbone_prefix, "In the backbone (canonical names):") from error
    assign_values(targets, values)
    prefix = spec.backbone_prefix
    return {
        "loaded": [prefix + key for key in report["loaded"]] + list(targets),
        "skipped": skipped + [prefix + key for key in report["skipped"]],
    }


def _class_count_hint(state: Mapping[str, Any], targets: Mapping[str, Target], spec: HeadCheckpoint) -> str:
    classifier = spec.classifier
    if classifier not in state or classifier not in targets:
        return ""
    got = int(np.shape(state[classifier])[0]) // spec.rows_per_class
    want = targets[classifier].torch_shape[0] // spec.rows_per_class
    if got == want:
        return ""
    return (
        f"The checkpoint's classifier ({classifier}) has {got} classes and the model {want}: "
        f"build it with num_classes={got} (or num_classes=None to take it from the checkpoint)."
    )
