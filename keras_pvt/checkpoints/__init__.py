"""Read PyTorch PVT-v2 checkpoints (official, timm or HF naming) and load them into keras-pvt models.

from keras_pvt.checkpoints import load_checkpoint, read_state_dict
load_checkpoint(model, "model.safetensors")     # into an existing model
keras_pvt.from_checkpoint("pvt_v2_b2_li.pth")   # the model the checkpoint holds, built and loaded

This package never builds a model: readers, key maps, assignment and variant detection only.
`keras_pvt.weights` (the builders' `weights=`) and `keras_pvt.checkpoint_model` (`from_checkpoint`)
sit above it.
"""

from __future__ import annotations

from typing import Any

from keras_pvt.checkpoints.assign import CheckpointMismatchError, CheckpointValueError
from keras_pvt.checkpoints.assign import assign_state_dict as assign_state_dict
from keras_pvt.checkpoints.assign import model_targets as model_targets
from keras_pvt.checkpoints.errors import CheckpointReadError, UnsafeCheckpointError
from keras_pvt.checkpoints.keymaps import detect_scheme as detect_scheme
from keras_pvt.checkpoints.keymaps import to_canonical as to_canonical
from keras_pvt.checkpoints.load import load_canonical as load_canonical
from keras_pvt.checkpoints.load import load_checkpoint
from keras_pvt.checkpoints.readers import checkpoint_format as checkpoint_format
from keras_pvt.checkpoints.readers import read_state_dict
from keras_pvt.checkpoints.variant import infer_config

# What users call. The `name as name` imports are lower-level pieces, importable from here as before.
__all__ = [
    "CheckpointMismatchError",
    "CheckpointReadError",
    "CheckpointValueError",
    "UnsafeCheckpointError",
    "from_checkpoint",
    "infer_config",
    "load_checkpoint",
    "read_state_dict",
]


def __getattr__(name: str) -> Any:
    # `from_checkpoint` builds a model, so it lives above this package (keras_pvt.checkpoint_model,
    # which imports the builder); it is looked up on first use to keep this package free of it.
    if name == "from_checkpoint":
        from keras_pvt.checkpoint_model import from_checkpoint

        return from_checkpoint
    raise AttributeError(f"module 'keras_pvt.checkpoints' has no attribute {name!r}")
