"""Input pipelines: tensorflow-datasets names, image folders, and the embedded offline dataset.

Importing this package registers the offline builder, so ``tfds.load("keras_pvt_shapes")`` works
without a network.
"""

from keras_pvt.data.pipeline import Pipelines, eval_pipeline, make_pipelines, to_numpy
from keras_pvt.data.preprocess import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform
from keras_pvt.data.shapes import CLASS_NAMES, DATASET_NAME, render_example, shapes_config
from keras_pvt.data.sources import DataSource, load_source

__all__ = [
    "CLASS_NAMES",
    "DATASET_NAME",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DataSource",
    "Pipelines",
    "eval_pipeline",
    "eval_transform",
    "load_source",
    "make_pipelines",
    "render_example",
    "shapes_config",
    "to_numpy",
    "train_transform",
]
