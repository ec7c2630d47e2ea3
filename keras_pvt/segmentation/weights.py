"""`SemanticFPN(weights=...)`: mmseg checkpoints of the whole segmenter, or our own Keras files.

An mmseg checkpoint (``torch.save({"meta": ..., "state_dict": ...})``, read without torch and
without executing anything, see `keras_pvt.checkpoints.torch_pickle`) or its state dict loads all
or nothing: the neck and head keys are checked first (`checkpoint_keys`), the backbone then loads
through `keras_pvt.checkpoints.load_checkpoint` (official, timm or HF naming under ``backbone.``),
the head last. ``*.num_batches_tracked`` counters are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from keras_pvt.checkpoints import (
    CheckpointMismatchError,
    CheckpointValueError,
    load_checkpoint,
    read_state_dict,
)
from keras_pvt.checkpoints.assign import BOOKKEEPING_SUFFIXES
from keras_pvt.checkpoints.keras_files import load_keras_file
from keras_pvt.checkpoints.readers import checkpoint_format
from keras_pvt.segmentation.backbone import features_config, segmenter_backbone
from keras_pvt.segmentation.checkpoint_keys import CLASSIFIER_KEY, head_targets, split_state

__all__ = ["checkpoint_num_classes", "load_segmenter_weights", "read_segmenter_state"]


def read_segmenter_state(weights: Any) -> Any:
    """`weights` with a PyTorch-style checkpoint path read into its state dict (Keras files, None
    and state dicts unchanged), so that a bad file fails before the model is built."""
    if weights is None or isinstance(weights, Mapping):
        return weights
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(
            f"`weights` must be None, a checkpoint path or a state dict, got {type(weights).__name__}."
        )
    if not Path(weights).is_file():
        raise FileNotFoundError(
            f"weights={os.fspath(weights)!r}: no such file. Pass an mmseg checkpoint (.pth) of the "
            "segmenter, a Keras .weights.h5/.keras file, or use backbone_weights= for the backbone."
        )
    if checkpoint_format(weights) == "keras":
        return weights
    return read_state_dict(weights)


def checkpoint_num_classes(weights: Any) -> int:
    """The class count of a segmenter checkpoint (rows of ``decode_head.conv_seg.weight``)."""
    if not isinstance(weights, Mapping):
        raise ValueError(
            "num_classes=None takes the class count from an mmseg checkpoint (or its state dict) "
            f"given as weights=; got weights={weights!r}. Pass num_classes=..."
        )
    if CLASSIFIER_KEY not in weights:
        raise CheckpointMismatchError([CLASSIFIER_KEY], [], [], _not_a_segmenter(weights))
    return int(np.shape(weights[CLASSIFIER_KEY])[0])


def load_segmenter_weights(model: Any, weights: Any) -> dict[str, list[str]]:
    """Load `weights` (a path, an already read state dict, or a Keras file) into a `SemanticFPN`.

    Returns ``{"loaded", "skipped"}`` (mmseg key names). Raises `CheckpointMismatchError` listing
    missing, unexpected and mis-shaped keys (with the class count to build when only that
    differs), `CheckpointValueError`, `CheckpointReadError` or FileNotFoundError; nothing is
    written unless everything fits.
    """
    weights = read_segmenter_state(weights)
    if not isinstance(weights, Mapping):
        rebuild = "segmenter (backbone, num_classes, fpn_channels, head_channels)"
        load_keras_file(model, Path(weights), rebuild=rebuild)
        return {"loaded": [w.path for w in model.weights], "skipped": []}
    state = {k: v for k, v in weights.items() if not k.endswith(BOOKKEEPING_SUFFIXES)}
    skipped = [k for k in weights if k not in state]
    backbone_state, head_state = split_state(state)
    if not backbone_state:
        raise CheckpointMismatchError([], [], [], _not_a_segmenter(weights))
    targets = head_targets(model)
    _check_head(head_state, targets)
    values = _head_values(head_state, targets)
    backbone = segmenter_backbone(model)
    try:
        report = load_checkpoint(backbone, backbone_state, config=features_config(backbone), head="auto")
    except CheckpointMismatchError as error:
        raise CheckpointMismatchError(
            [f"backbone.{k}" for k in error.missing],
            [f"backbone.{k}" for k in error.unexpected],
            [(f"backbone.{k}", got, want) for k, got, want in error.mismatched],
            "In the backbone (canonical names):",
        ) from error
    for key, target in targets.items():
        target.variable.assign(target.to_keras(values[key]).astype(target.variable.dtype))
    loaded = [f"backbone.{k}" for k in report["loaded"]] + list(targets)
    return {"loaded": loaded, "skipped": skipped + [f"backbone.{k}" for k in report["skipped"]]}


def _not_a_segmenter(state: Mapping[str, Any]) -> str:
    sample = ", ".join(sorted(state)[:4]) or "(none)"
    return (
        "This is not an mmseg checkpoint of a PVT-v2 Semantic FPN (no `backbone.*` and "
        f"`{CLASSIFIER_KEY}` keys; first keys: {sample}). For backbone-only (ImageNet) weights "
        "use backbone_weights=."
    )


def _check_head(state: Mapping[str, Any], targets: Mapping[str, Any]) -> None:
    missing = [k for k in targets if k not in state]
    unexpected = [k for k in state if k not in targets]
    mismatched = [
        (k, tuple(int(d) for d in np.shape(state[k])), targets[k].torch_shape)
        for k in targets
        if k in state and tuple(np.shape(state[k])) != targets[k].torch_shape
    ]
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(missing, unexpected, mismatched, _class_count_hint(state, targets))


def _class_count_hint(state: Mapping[str, Any], targets: Mapping[str, Any]) -> str:
    if CLASSIFIER_KEY not in state:
        return ""
    got = int(np.shape(state[CLASSIFIER_KEY])[0])
    want = targets[CLASSIFIER_KEY].torch_shape[0]
    if got == want:
        return ""
    return (
        f"The checkpoint's classifier ({CLASSIFIER_KEY}) has {got} classes and the model {want}: "
        f"build it with num_classes={got} (or num_classes=None to take it from the checkpoint)."
    )


def _head_values(state: Mapping[str, Any], targets: Mapping[str, Any]) -> dict[str, np.ndarray]:
    values, not_float, not_finite = {}, [], []
    for key in targets:
        value = np.asarray(state[key])
        if value.dtype.kind != "f" and not value.dtype.name.startswith(("bfloat16", "float8")):
            not_float.append(f"{key} ({value.dtype.name})")
            continue
        with np.errstate(over="ignore"):
            value = value.astype(np.float32)
        if not np.isfinite(value).all():
            not_finite.append(f"{key} ({int((~np.isfinite(value)).sum())} non-finite)")
        values[key] = value
    if not_float or not_finite:
        raise CheckpointValueError(not_float, not_finite)
    return values
