"""Load a PyTorch PVT-v2 checkpoint (a path or a state dict, any naming) into an existing model."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from keras_pvt.checkpoints.assign import assign_state_dict
from keras_pvt.checkpoints.keymaps import to_canonical
from keras_pvt.checkpoints.readers import read_state_dict
from keras_pvt.checkpoints.variant import preset_of, read_architecture, shape_fields
from keras_pvt.config import PVTV2Config
from keras_pvt.presets import get_config

StateOrPath = str | os.PathLike | Mapping[str, np.ndarray]


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
