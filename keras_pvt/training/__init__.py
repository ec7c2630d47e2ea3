"""Training PVT-v2 with `model.fit`: the paper's recipe, `tf.distribute` strategies, resumable runs.

    from keras_pvt.training import train
    result = train("b0", dataset="tf_flowers", weights="imagenet", epochs=5, batch_size=32)

Options are grouped in `DataOptions` (the images), `Recipe` (the optimisation) and `RunOptions`
(output, weights, epochs, precision, strategy); `train` takes each field as a keyword too.
`train_segmentation` trains a Semantic FPN the same way (`SegmentationDataOptions`,
`SegmentationRecipe`, `SegmenterOptions`, `RunOptions`), and `train_detection` a RetinaNet
(`DetectionDataOptions`, `DetectionRecipe`, `DetectorOptions`, `RunOptions`; COCO mAP needs
``pip install 'keras-pvt[detection]'``).
"""

from keras_pvt._requires import require_tensorflow

require_tensorflow("keras_pvt.training")  # one clear ImportError where TensorFlow is absent

from keras_pvt.training.callbacks import TrainingDivergedError
from keras_pvt.training.detection import DetectionTrainResult, train_detection
from keras_pvt.training.detection_options import DetectionDataOptions, DetectorOptions
from keras_pvt.training.detection_recipe import DetectionRecipe
from keras_pvt.training.options import PRECISIONS, DataOptions, RunOptions
from keras_pvt.training.recipe import Recipe
from keras_pvt.training.segmentation import SegmentationTrainResult, train_segmentation
from keras_pvt.training.segmentation_options import SegmentationDataOptions, SegmenterOptions
from keras_pvt.training.segmentation_recipe import SegmentationRecipe
from keras_pvt.training.strategy import STRATEGIES, get_strategy
from keras_pvt.training.train import TrainResult, train

__all__ = [
    "PRECISIONS",
    "STRATEGIES",
    "DataOptions",
    "DetectionDataOptions",
    "DetectionRecipe",
    "DetectionTrainResult",
    "DetectorOptions",
    "Recipe",
    "RunOptions",
    "SegmentationDataOptions",
    "SegmentationRecipe",
    "SegmentationTrainResult",
    "SegmenterOptions",
    "TrainResult",
    "TrainingDivergedError",
    "get_strategy",
    "train",
    "train_detection",
    "train_segmentation",
]
