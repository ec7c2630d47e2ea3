"""Input pipelines: tensorflow-datasets names, image folders, and the embedded offline dataset.

Importing this package registers the offline builders, so ``tfds.load("keras_pvt_shapes")`` and
``tfds.load("keras_pvt_seg_shapes")`` (segmentation: images + masks) and
``tfds.load("keras_pvt_det_shapes")`` (detection: images + boxes) work without a network.
"""

from keras_pvt._requires import require_tensorflow

require_tensorflow("keras_pvt.data")  # one clear ImportError where TensorFlow is absent

from keras_pvt.data.det_pipeline import DetectionPipelines, make_detection_pipelines
from keras_pvt.data.det_shapes import (
    DET_CLASS_NAMES,
    DET_DATASET_NAME,
    det_shapes_config,
    render_detection_example,
)
from keras_pvt.data.det_sources import DetectionSource, load_detection_source
from keras_pvt.data.pipeline import Pipelines, eval_pipeline, make_pipelines, to_numpy
from keras_pvt.data.preprocess import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform
from keras_pvt.data.seg_pipeline import (
    SegmentationPipelines,
    make_segmentation_pipelines,
    segmentation_eval_pipeline,
)
from keras_pvt.data.seg_shapes import (
    SEG_CLASS_NAMES,
    SEG_DATASET_NAME,
    render_segmentation_example,
    seg_shapes_config,
)
from keras_pvt.data.seg_sources import SegmentationSource, load_segmentation_source
from keras_pvt.data.shapes import CLASS_NAMES, DATASET_NAME, render_example, shapes_config
from keras_pvt.data.sources import DataSource, load_source

__all__ = [
    "CLASS_NAMES",
    "DATASET_NAME",
    "DET_CLASS_NAMES",
    "DET_DATASET_NAME",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SEG_CLASS_NAMES",
    "SEG_DATASET_NAME",
    "DataSource",
    "DetectionPipelines",
    "DetectionSource",
    "Pipelines",
    "SegmentationPipelines",
    "SegmentationSource",
    "det_shapes_config",
    "eval_pipeline",
    "eval_transform",
    "load_detection_source",
    "load_segmentation_source",
    "load_source",
    "make_detection_pipelines",
    "make_pipelines",
    "make_segmentation_pipelines",
    "render_detection_example",
    "render_example",
    "render_segmentation_example",
    "seg_shapes_config",
    "segmentation_eval_pipeline",
    "shapes_config",
    "to_numpy",
    "train_transform",
]
