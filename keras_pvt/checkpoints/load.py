"""The one way weights get into a PVT-v2: `load_weights` (the builders' `weights=`: None,
"imagenet", a checkpoint path, a state dict, a Keras file) and `load_checkpoint` (PyTorch-style
checkpoints in any naming).

The builders (`PVT_V2`, `PVTV2B0` ... `PVTV2B5`), `from_checkpoint`, the CLI, training and the
segmenter's backbone go through `load_weights`. To fine-tune into a new classifier, build the model
with its own class count and call ``load_weights(model, weights, config=config, variant=name,
head="auto")``: the backbone loads from "imagenet" or any PyTorch checkpoint and the classifier
keeps its initial weights. A task model (backbone and head in one checkpoint) loads through `heads`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from keras_pvt.checkpoints import pretrained
from keras_pvt.checkpoints.assign import assign_state_dict
from keras_pvt.checkpoints.keras_files import load_keras_weights
from keras_pvt.checkpoints.keymaps import to_canonical
from keras_pvt.checkpoints.readers import checkpoint_format, read_state_dict
from keras_pvt.checkpoints.variant import preset_of, read_architecture, shape_fields
from keras_pvt.config import PVTV2Config
from keras_pvt.imagenet import IMAGENET_CLASSES
from keras_pvt.presets import get_config

__all__ = ["check_weights", "load_checkpoint", "load_weights", "preset_of"]

StateOrPath = str | os.PathLike | Mapping[str, np.ndarray]
Weights = StateOrPath
CHECKPOINT_SUFFIXES = ".safetensors, .pth, .pt, .bin, .npz, .weights.h5, .keras"


def weights_file(weights: Any, accepted: str, fix: str) -> Path:
    """`weights` as the path of an existing file; TypeError or FileNotFoundError saying what is `accepted`.

    `fix`: what to pass instead of a missing file. Shared by every `weights=` argument.
    """
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"`weights` must be {accepted}, got {weights!r}.")
    if not Path(weights).is_file():
        raise FileNotFoundError(f"weights={os.fspath(weights)!r}: no such file. {fix}")
    return Path(weights)


def check_weights(
    weights: Weights | None, config: PVTV2Config, variant: str | None = None, *, head: str | None = None
) -> None:
    """Refuse a `weights` argument that cannot fit a model of `config`, before the model is built.

    ``"imagenet"`` needs a preset architecture and, when its classifier must load (``head`` None
    or "require"), 1000 classes or no classifier; a path must be an existing file.
    """
    if weights is None or isinstance(weights, Mapping):
        return
    if isinstance(weights, str) and weights == "imagenet":
        if head != "auto" and config.num_classes not in (0, IMAGENET_CLASSES):
            raise ValueError(
                f"weights='imagenet' with include_top=True needs classes={IMAGENET_CLASSES}, got "
                f"classes={config.num_classes}. Use include_top=False (and add your own head), or "
                "weights=None."
            )
        if (variant or preset_of(config)) is None:
            raise ValueError(
                "weights='imagenet' needs one of the preset architectures (b0 ... b5, b2_li); this "
                "config matches none. Build from a preset name, or pass a checkpoint path or None."
            )
        return
    weights_file(
        weights,
        "None, 'imagenet', a file path or a state dict",
        f"Pass None, 'imagenet', or the path of a checkpoint ({CHECKPOINT_SUFFIXES}).",
    )


def load_weights(
    model: Any,
    weights: Weights,
    config: PVTV2Config,
    variant: str | None = None,
    *,
    head: str | None = None,
) -> None:
    """Load `weights` into `model` (built from `config`, preset `variant` if it came from one).

    * ``"imagenet"``: the public ImageNet-1k checkpoint of the preset (downloaded once, cached,
      hash-checked; see `keras_pvt.checkpoints.pretrained`). Needs a preset architecture and, with
      a classifier, 1000 classes (unless ``head="auto"``).
    * a path to ``.safetensors`` / ``.pth`` / ``.pt`` / ``.bin`` / ``.npz`` (official, timm or HF
      naming; see `keras_pvt.checkpoints`) or to a Keras ``.weights.h5`` / ``.keras`` file.
    * a state dict ``{name: array}`` in any of the three namings.

    `head`: "require" (the checkpoint's classifier must fit), "auto" (a classifier of another
    width, or none, leaves the model's as initialised, with a warning) or None: "require" for
    "imagenet", "auto" for checkpoints. Keras files load as saved: their classifier must fit.

    A model built for another channel count than 3 takes RGB weights of every source: the first
    layer's kernel is adapted by timm's rule (`keras_pvt.checkpoints.assign.adapt_input_conv`),
    with a warning.
    """
    check_weights(weights, config, variant, head=head)
    if isinstance(weights, str) and weights == "imagenet":
        name = variant or preset_of(config)
        load_checkpoint(model, pretrained.fetch(name), config=config, head=head or "require")
    elif not isinstance(weights, Mapping) and checkpoint_format(weights) == "keras":
        load_keras_weights(model, Path(weights), rebuild="architecture (variant, include_top, classes)")
    else:
        load_checkpoint(model, weights, config=config, head=head or "auto")


def load_canonical(checkpoint: StateOrPath) -> tuple[dict[str, np.ndarray], str]:
    """Read a checkpoint file (or take a state dict) and rename it to the canonical scheme."""
    state = checkpoint if isinstance(checkpoint, Mapping) else read_state_dict(checkpoint)
    return to_canonical(state)


def load_checkpoint(
    model: Any,
    checkpoint: StateOrPath,
    *,
    config: PVTV2Config | str | None = None,
    head: str = "auto",
) -> dict[str, Any]:
    """Load a PyTorch PVT-v2 checkpoint (path or state dict, any of the three namings) into `model`.

    `config` (the model's config or preset name) only sharpens the error message when the
    checkpoint is for another architecture. With `head="auto"` a classifier of another width (or
    none) is skipped with a warning; a model without a head ignores the checkpoint's. Returns
    ``{"scheme", "loaded", "skipped", "adapted"}``. Raises `CheckpointMismatchError` (missing /
    unexpected / mis-shaped keys), `CheckpointValueError` (non-float or non-finite tensors),
    `CheckpointReadError` (corrupt file; `UnsafeCheckpointError` for a pickle naming code) or
    FileNotFoundError.
    """
    state, scheme = load_canonical(checkpoint)
    if isinstance(config, str):
        config = get_config(config)
    hint = architecture_hint(state, config) if config is not None else ""
    report = assign_state_dict(model, state, head=head, hint=hint)
    return {"scheme": scheme, **report}


def architecture_hint(state: Mapping[str, np.ndarray], config: PVTV2Config) -> str:
    """A sentence saying which architecture the canonical `state` holds, when it is not `config`'s.

    The channel count and the reduction ratios are left out: an RGB checkpoint adapts to any
    channel count, and other ratios show as mis-shaped reduction kernels.
    """
    try:
        fields, _ = read_architecture(state)
    except ValueError:
        return ""
    ours = shape_fields(config)
    if all(
        ours.get(key) == value for key, value in fields.items() if key not in ("in_channels", "sr_ratios")
    ):
        return ""
    name = preset_of(fields)
    label = f"PVT-v2-{name}" if name else "another PVT-v2's"
    fix = f"build it with `PVT_V2('{name}', weights=...)`." if name else "build a matching model."
    return (
        f"It holds {label} weights (embed_dims {fields['embed_dims']}, depths {fields['depths']}, "
        f"linear {fields['linear']}) but the model has embed_dims {tuple(config.embed_dims)}, "
        f"depths {tuple(config.depths)}, linear {config.linear}: {fix}"
    )
