"""`train`: fine-tune or train a PVT-v2 with `model.fit` on a tfds / image-folder pipeline."""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

from keras_pvt._keywords import options_from
from keras_pvt.checkpoints.load import load_weights
from keras_pvt.config import PVTV2Config
from keras_pvt.data import DATASET_NAME, Pipelines, make_pipelines
from keras_pvt.model import PVT_V2
from keras_pvt.presets import DEFAULT_DROP_PATH
from keras_pvt.training.options import DataOptions, RunOptions
from keras_pvt.training.recipe import Recipe
from keras_pvt.training.resumable_fit import (
    RunResult,
    fit_in_run_folder,
    make_pipelines_from,
    run_info,
    start_run,
)
from keras_pvt.training.task_model import compile_for_run
from keras_pvt.training.variant_config import check_image_size, resolve_config

MONITOR = "val_accuracy"


@dataclasses.dataclass
class TrainResult(RunResult):
    """What a run produced: the best model (weights of the best validation epoch) and its files."""

    best_val_accuracy: float | None


def train(
    variant: str | PVTV2Config | Mapping[str, Any] = "b0",
    *,
    data: DataOptions | None = None,
    recipe: Recipe | None = None,
    run: RunOptions | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: str | int = "auto",
    dataset: str | Pipelines = DATASET_NAME,
    image_size: int = 224,
    batch_size: int = 64,
    data_dir: str | None = None,
    download: bool = True,
    augment: bool = True,
    shuffle: bool = True,
    val_from_train: bool = False,
    crop_scale: tuple[float, float] = (0.35, 1.0),
    cache: bool = False,
    output: str = "runs/pvt_v2",
    weights: str | None = None,
    epochs: int = 10,
    steps_per_epoch: int | None = None,
    drop_path_rate: float | None = None,
    precision: str = "float32",
    jit_compile: bool = False,
    strategy: str | tf.distribute.Strategy = "auto",
    tpu: str | None = None,
    resume: bool = True,
    overwrite: bool = False,
    seed: int | None = 0,
) -> TrainResult:
    """Train `variant` on a dataset with the PVT-v2 recipe and write the run to a folder.

    Args:
        variant: preset name ("b0" ... "b5", "b2_li"), a `PVTV2Config` or its dict.
        data: the images and how they are fed (`DataOptions`: dataset, image_size, batch_size, ...).
        recipe: optimisation settings (`Recipe`: lr per 512 images, warmup, cosine, weight decay
            0.05 off for norms/biases, label smoothing 0.1, optional gradient clipping).
        run: output folder, starting weights, epochs, precision, strategy, resume (`RunOptions`).
        callbacks: extra Keras callbacks (run after the built-in ones).
        verbose: `model.fit` verbosity.
        dataset ... cache: the fields of `DataOptions` (documented there), by name.
        output ... seed: the fields of `RunOptions` (documented there), by name.

    Without `data` / `run` the fields by name make them; with them, each field given by name
    (other than its default) replaces theirs: ``train("b0", dataset="tf_flowers", epochs=5)``.
    Out-of-range arguments raise `ValueError` before any work; a NaN/infinite loss stops the run
    with `TrainingDivergedError`, keeping the epochs finished before it.
    """
    arguments = locals()
    data = options_from(train, arguments, DataOptions, data)
    run = options_from(train, arguments, RunOptions, run)
    recipe = recipe or Recipe()
    config, variant_key = resolve_config(variant)
    drop_path_rate = run.drop_path_rate
    if drop_path_rate is None:
        drop_path_rate = DEFAULT_DROP_PATH.get(variant_key, config.drop_path_rate)
    config = config.replace(drop_path_rate=drop_path_rate)
    check_image_size(config, data.image_size)
    place = start_run(run)
    pipes = make_pipelines_from(data, make_pipelines, Pipelines, run.seed)

    outcome = fit_in_run_folder(
        place,
        run,
        train=_one_hot(pipes.train, pipes.num_classes),
        val=_one_hot(pipes.val, pipes.num_classes),
        steps_per_epoch=pipes.steps_per_epoch,
        build=functools.partial(_compiled_classifier, config, variant_key, recipe, run, pipes),
        info={
            "variant": variant_key,
            "config": config.to_dict(),
            **run_info(data, recipe, run, pipes, place.strategy),
        },
        monitor=MONITOR,
        callbacks=callbacks,
        verbose=verbose,
    )
    return TrainResult(
        **outcome.result_fields(pipes.class_names, run.output), best_val_accuracy=outcome.best_value
    )


def _compiled_classifier(
    config: PVTV2Config, variant_key: str, recipe: Recipe, run: RunOptions, pipes: Pipelines, steps: int
) -> keras.Model:
    """The classifier, compiled for a run of `steps` steps per epoch."""
    model = _build_model(config, pipes.num_classes, run.weights, variant_key)
    metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    return compile_for_run(model, recipe, run, pipes.batch_size, steps, loss=recipe.loss(), metrics=metrics)


def _build_model(config: PVTV2Config, num_classes: int, weights: str | None, variant_key: str) -> keras.Model:
    """A classifier for `num_classes`, its weights loaded from `weights` by the builders' loader
    (`keras_pvt.checkpoints.load.load_weights`): all of them when the saved head has `num_classes`
    outputs, else the backbone's, with a new head."""
    model = PVT_V2(config, classes=num_classes)
    if weights is None:
        return model
    variant = None if variant_key == "custom" else variant_key
    try:
        with warnings.catch_warnings():  # Keras' note on the head it could not load: see below
            warnings.filterwarnings("ignore", message="Skipping nested container")
            load_weights(model, weights, config=config.replace(num_classes=num_classes), variant=variant)
    except ValueError:  # the head does not fit (or nothing does: the backbone says so below)
        backbone = keras.Model(model.inputs, model.get_layer("stage4").output, name=model.name)
        load_weights(backbone, weights, config=config.replace(num_classes=0), variant=variant)
    return model


def _one_hot(dataset: tf.data.Dataset, num_classes: int) -> tf.data.Dataset:
    return dataset.map(
        lambda images, labels: (images, tf.one_hot(labels, num_classes)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
