"""Load PyTorch PVT-v2 checkpoints (official, timm or HF naming) into keras-pvt models.

from keras_pvt.checkpoints import from_checkpoint, load_checkpoint
model = from_checkpoint("pvt_v2_b2_li.pth")      # architecture inferred from the tensors
load_checkpoint(model, "model.safetensors")     # into an existing model
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from keras_pvt.checkpoints.assign import (
    CheckpointMismatchError,
    CheckpointValueError,
    assign_state_dict,
    model_targets,
)
from keras_pvt.checkpoints.errors import UnsafeCheckpointError
from keras_pvt.checkpoints.keymaps import detect_scheme, to_canonical
from keras_pvt.checkpoints.readers import CheckpointReadError, checkpoint_format, read_state_dict
from keras_pvt.checkpoints.variant import infer_config, match_preset, read_architecture, shape_fields
from keras_pvt.config import PVTV2Config

__all__ = [
    "CheckpointMismatchError",
    "CheckpointReadError",
    "CheckpointValueError",
    "UnsafeCheckpointError",
    "assign_state_dict",
    "checkpoint_format",
    "detect_scheme",
    "from_checkpoint",
    "infer_config",
    "load_canonical",
    "load_checkpoint",
    "model_targets",
    "read_state_dict",
    "to_canonical",
]

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
    ``{"scheme", "loaded", "skipped"}``. Raises `CheckpointMismatchError` (missing / unexpected /
    mis-shaped keys), `CheckpointValueError` (non-float or non-finite tensors), `CheckpointReadError`
    (corrupt file; `UnsafeCheckpointError` for a pickle naming code) or FileNotFoundError.
    """
    state, scheme = load_canonical(checkpoint)
    if isinstance(config, str):
        from keras_pvt.presets import get_config

        config = get_config(config)
    hint = _architecture_hint(state, config) if config is not None else ""
    report = assign_state_dict(model, state, head=head, hint=hint)
    return {"scheme": scheme, **report}


def _architecture_hint(state: Mapping[str, np.ndarray], config: PVTV2Config) -> str:
    """A sentence saying which architecture the checkpoint holds, when it is not `config`'s."""
    try:
        fields, sr_ratios, _ = read_architecture(state)
    except ValueError:
        return ""
    ours = shape_fields(config)
    if {**fields, "in_channels": ours["in_channels"]} == ours:  # channels: see assign_state_dict
        return ""
    name = match_preset(fields, sr_ratios)
    label = f"PVT-v2-{name}" if name else "another PVT-v2's"
    fix = f"build it with `PVT_V2('{name}', weights=...)`." if name else "build a matching model."
    return (
        f"It holds {label} weights (embed_dims {fields['embed_dims']}, depths {fields['depths']}, "
        f"linear {fields['linear']}) but the model has embed_dims {tuple(config.embed_dims)}, "
        f"depths {tuple(config.depths)}, linear {config.linear}: {fix}"
    )


def from_checkpoint(
    checkpoint: StateOrPath,
    *,
    variant: str | None = None,
    config: PVTV2Config | Mapping[str, Any] | None = None,
    include_top: bool = True,
    **kwargs: Any,
) -> Any:
    """Build the PVT-v2 a checkpoint was trained as and load it, in one call.

    The architecture comes from `config`, else from `variant` (checked against the tensors), else it
    is inferred from the tensor shapes (presets only: the head count is not stored in a checkpoint).
    The class count follows the checkpoint's classifier. Other keyword arguments go to `PVT_V2`
    (e.g. ``features_only=True``, ``classifier_activation=None``).
    """
    from keras_pvt.model import PVT_V2
    from keras_pvt.presets import canonical_variant, get_config

    state, _ = load_canonical(checkpoint)
    if config is not None:
        arch = config if isinstance(config, PVTV2Config) else PVTV2Config.from_dict(config)
        name = None
    elif variant is not None:
        name = canonical_variant(variant)
        arch = get_config(name)
        hint = _architecture_hint(state, arch)
        if hint:
            raise ValueError(f"--variant/variant={variant!r} does not fit the checkpoint. {hint}")
    else:
        name, arch = infer_config(state)
    head = state.get("head.weight")
    classes = int(head.shape[0]) if head is not None and include_top else arch.num_classes
    if include_top and head is None:
        include_top = False
    model = PVT_V2(
        arch,
        include_top=include_top,
        classes=classes if include_top else None,
        name=kwargs.pop("name", f"pvt_v2_{name}" if name else "pvt_v2"),
        **kwargs,
    )
    assign_state_dict(
        model, state, head="require" if include_top else "auto", hint=_architecture_hint(state, arch)
    )
    return model
