"""`from_checkpoint`: build the PVT-v2 a PyTorch checkpoint holds and load it, in one call.

The one module of this package that builds a model (it imports the builder, which loads weights
through `load`), so nothing else here imports it: `keras_pvt.checkpoints.from_checkpoint` looks it
up on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from keras_pvt.checkpoints.load import StateOrPath, architecture_hint, load_canonical
from keras_pvt.checkpoints.variant import infer_config
from keras_pvt.config import PVTV2Config
from keras_pvt.model import PVT_V2
from keras_pvt.presets import canonical_variant, get_config


def from_checkpoint(
    checkpoint: StateOrPath,
    *,
    variant: str | None = None,
    config: PVTV2Config | Mapping[str, Any] | None = None,
    include_top: bool = True,
    **kwargs: Any,
) -> keras.Model:
    """Build the PVT-v2 a checkpoint was trained as and load it (through the builder's `weights=`).

    The architecture comes from `config`, else from `variant` (checked against the tensors), else it
    is inferred from the tensor shapes (presets only: the head count is not stored in a checkpoint).
    The class count follows the checkpoint's classifier. Other keyword arguments go to `PVT_V2`
    (e.g. ``features_only=True``, ``classifier_activation=None``).
    """
    state, _ = load_canonical(checkpoint)
    if config is not None:
        arch = config if isinstance(config, PVTV2Config) else PVTV2Config.from_dict(config)
        name = None
    elif variant is not None:
        name = canonical_variant(variant)
        arch = get_config(name)
        hint = architecture_hint(state, arch)
        if hint:
            raise ValueError(f"--variant/variant={variant!r} does not fit the checkpoint. {hint}")
    else:
        name, arch = infer_config(state)
    head = state.get("head.weight")
    include_top = include_top and head is not None
    return PVT_V2(
        arch,
        include_top=include_top,
        classes=int(head.shape[0]) if include_top else None,
        name=kwargs.pop("name", f"pvt_v2_{name}" if name else "pvt_v2"),
        weights=state,
        **kwargs,
    )
