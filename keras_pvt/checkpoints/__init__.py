"""The one way weights get into keras-pvt models: PyTorch checkpoints (official, timm or HF naming;
mmseg's whole segmenters), the ImageNet downloads and our own Keras files.

from keras_pvt.checkpoints import load_checkpoint, read_state_dict
load_checkpoint(model, "model.safetensors")     # into an existing model
keras_pvt.from_checkpoint("pvt_v2_b2_li.pth")   # the model the checkpoint holds, built and loaded

One module per job: read a file into a flat state dict without executing code (`readers`,
`torch_pickle`), translate naming schemes (`keymaps`), tell the architecture (`variant`), write
tensors through a key map (`assign`), fetch the ImageNet checkpoints (`pretrained`), load Keras
files and models (`keras_files`), the builders' `weights=` (`load`), a backbone-plus-head checkpoint
of a task model (`heads`, where a head plugs in its key map), the errors they all raise (`errors`).
`build` (`from_checkpoint`) is the one module that builds a model; it is looked up on first use.
"""

from __future__ import annotations

from typing import Any

from keras_pvt.checkpoints.assign import assign_state_dict as assign_state_dict
from keras_pvt.checkpoints.assign import model_targets as model_targets
from keras_pvt.checkpoints.errors import (
    CheckpointMismatchError,
    CheckpointReadError,
    CheckpointValueError,
    UnsafeCheckpointError,
)
from keras_pvt.checkpoints.keras_files import load_keras_model
from keras_pvt.checkpoints.keymaps import detect_scheme as detect_scheme
from keras_pvt.checkpoints.keymaps import to_canonical as to_canonical
from keras_pvt.checkpoints.load import load_canonical as load_canonical
from keras_pvt.checkpoints.load import load_checkpoint, load_weights
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
    "load_keras_model",
    "load_weights",
    "read_state_dict",
]


def __getattr__(name: str) -> Any:
    # `from_checkpoint` builds a model: its module imports the builder, which loads weights through
    # this package, so it is looked up on first use.
    if name == "from_checkpoint":
        from keras_pvt.checkpoints.build import from_checkpoint

        return from_checkpoint
    raise AttributeError(f"module 'keras_pvt.checkpoints' has no attribute {name!r}")
