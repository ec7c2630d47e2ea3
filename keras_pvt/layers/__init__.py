"""Keras layers of PVT-v2; all registered for serialization under the `keras_pvt` package."""

from keras_pvt.layers.attention import SpatialReductionAttention
from keras_pvt.layers.batch_norm import SyncBatchNormalization
from keras_pvt.layers.block import PVTBlock, PVTStage
from keras_pvt.layers.drop_path import DropPath
from keras_pvt.layers.mlp import ConvMlp
from keras_pvt.layers.norm import LayerNorm
from keras_pvt.layers.patch_embed import OverlapPatchEmbed
from keras_pvt.layers.pooling import AdaptiveAveragePooling2D
from keras_pvt.layers.resize import ResizeBilinearLike, ResizeNearestLike, UpsampleBilinear
from keras_pvt.layers.size_check import ImageSizeCheck

__all__ = [
    "AdaptiveAveragePooling2D",
    "ConvMlp",
    "DropPath",
    "ImageSizeCheck",
    "LayerNorm",
    "OverlapPatchEmbed",
    "PVTBlock",
    "PVTStage",
    "ResizeBilinearLike",
    "ResizeNearestLike",
    "SpatialReductionAttention",
    "SyncBatchNormalization",
    "UpsampleBilinear",
]
