"""Input pipelines: tensorflow-datasets names, image folders, and the embedded offline dataset.

Importing this package registers the offline builder, so ``tfds.load("keras_pvt_shapes")`` works
without a network.
"""

from keras_pvt.data.pipeline import Pipelines, eval_pipeline, make_pipelines, to_numpy
from keras_pvt.data.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    eval_transform,
    normalize,
    train_transform,
)
from keras_pvt.data.shapes import (
    CLASS_NAMES,
    DATASET_NAME,
    KerasPvtShapes,
    ShapesConfig,
    render_example,
    shapes_config,
)
from keras_pvt.data.sources import (
    DataSource,
    from_image_folder,
    from_tfds,
    load_source,
    tfds_builder,
)

__all__ = [
    "CLASS_NAMES",
    "DATASET_NAME",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DataSource",
    "KerasPvtShapes",
    "Pipelines",
    "ShapesConfig",
    "eval_pipeline",
    "eval_transform",
    "from_image_folder",
    "from_tfds",
    "load_source",
    "make_pipelines",
    "normalize",
    "render_example",
    "shapes_config",
    "tfds_builder",
    "to_numpy",
    "train_transform",
]
