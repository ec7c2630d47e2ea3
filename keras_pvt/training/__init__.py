"""Training PVT-v2 with `model.fit`: the paper's recipe, `tf.distribute` strategies, resumable runs."""

from keras_pvt.schedules import WarmupCosine
from keras_pvt.training.callbacks import TrainingDivergedError
from keras_pvt.training.outputs import plot_history, read_history
from keras_pvt.training.recipe import Recipe, no_decay_variables
from keras_pvt.training.strategy import STRATEGIES, get_strategy
from keras_pvt.training.train import PRECISIONS, TrainResult, train

__all__ = [
    "PRECISIONS",
    "STRATEGIES",
    "Recipe",
    "TrainResult",
    "TrainingDivergedError",
    "WarmupCosine",
    "get_strategy",
    "no_decay_variables",
    "plot_history",
    "read_history",
    "train",
]
