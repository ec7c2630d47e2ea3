"""keras-pvt: PVT-v2 (Pyramid Vision Transformer v2) for Keras 3."""

from keras_pvt import layers, schedules  # registers every serializable object a model can hold
from keras_pvt.checkpoints.build import from_checkpoint
from keras_pvt.config import PVTV2Config
from keras_pvt.detection import RetinaNet
from keras_pvt.imagenet import decode_predictions, preprocess_input
from keras_pvt.inference import compile_inference
from keras_pvt.model import (
    PVT_V2,
    PVTV2B0,
    PVTV2B1,
    PVTV2B2,
    PVTV2B3,
    PVTV2B4,
    PVTV2B5,
    PVTV2B2Li,
    pyramid_outputs,
)
from keras_pvt.preset_files import from_preset, save_to_preset
from keras_pvt.presets import PRESETS, get_config
from keras_pvt.segmentation import SemanticFPN

__version__ = "0.1.0"


_TRAINERS = ("train", "train_segmentation", "train_detection")


def __getattr__(name: str):
    # The trainers are imported lazily so that `import keras_pvt` does not load tensorflow-datasets.
    if name in _TRAINERS:
        from keras_pvt import training

        return getattr(training, name)
    raise AttributeError(f"module 'keras_pvt' has no attribute {name!r}")


__all__ = [
    "PRESETS",
    "PVTV2B0",
    "PVTV2B1",
    "PVTV2B2",
    "PVTV2B3",
    "PVTV2B4",
    "PVTV2B5",
    "PVT_V2",
    "PVTV2B2Li",
    "PVTV2Config",
    "RetinaNet",
    "SemanticFPN",
    "__version__",
    "compile_inference",
    "decode_predictions",
    "from_checkpoint",
    "from_preset",
    "get_config",
    "layers",
    "preprocess_input",
    "pyramid_outputs",
    "save_to_preset",
    "schedules",
    "train",
    "train_detection",
    "train_segmentation",
]
