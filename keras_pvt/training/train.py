"""`train`: fine-tune or train a PVT-v2 with `model.fit` on a tfds / image-folder pipeline."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

from keras_pvt.config import PVTV2Config
from keras_pvt.data import DATASET_NAME, Pipelines, make_pipelines
from keras_pvt.model import PVT_V2
from keras_pvt.presets import DEFAULT_DROP_PATH, canonical_variant, get_config
from keras_pvt.training import multi_worker, run_folder
from keras_pvt.training.callbacks import EpochCheckpoint, StopOnNonFiniteLoss
from keras_pvt.training.checks import run_arguments
from keras_pvt.training.outputs import plot_history, read_history
from keras_pvt.training.recipe import Recipe
from keras_pvt.training.run_folder import BEST_MODEL, CURVES, HISTORY
from keras_pvt.training.strategy import get_strategy, is_chief

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
MONITOR = "val_accuracy"


@dataclasses.dataclass
class TrainResult:
    """What a run produced: the best model (weights of the best validation epoch) and its files."""

    model: keras.Model
    history: dict[str, list[float]]
    best_val_accuracy: float | None
    class_names: list[str]
    output: str
    best_model_path: str
    history_path: str
    curves_path: str | None
    epochs_run: int

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def train(
    variant: str | PVTV2Config | Mapping[str, Any] = "b0",
    *,
    dataset: str | Pipelines = DATASET_NAME,
    output: str = "runs/pvt_v2",
    weights: str | None = None,
    image_size: int = 224,
    epochs: int = 10,
    batch_size: int = 64,
    recipe: Recipe | None = None,
    drop_path_rate: float | None = None,
    precision: str = "float32",
    jit_compile: bool = False,
    strategy: str | tf.distribute.Strategy = "auto",
    tpu: str | None = None,
    resume: bool = True,
    overwrite: bool = False,
    data_dir: str | None = None,
    download: bool = True,
    augment: bool = True,
    shuffle: bool = True,
    val_from_train: bool = False,
    crop_scale: tuple[float, float] = (0.35, 1.0),
    cache: bool = False,
    steps_per_epoch: int | None = None,
    seed: int | None = 0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: str | int = "auto",
) -> TrainResult:
    """Train `variant` on `dataset` with the PVT-v2 recipe and write the run to `output`.

    Args:
        variant: preset name ("b0" ... "b5", "b2_li"), a `PVTV2Config` or its dict.
        dataset: tfds name (e.g. "tf_flowers"), image folder (train/CLASS/*.jpg), the embedded
            offline "keras_pvt_shapes[/64px]" (default), or ready `Pipelines`.
        output: run folder: ``best.keras`` (best validation accuracy), ``history.csv``,
            ``training_curves.png``, ``run.json``, ``logs/`` (TensorBoard, if installed) and
            ``backup/`` (resume state while a run is unfinished). Every file is written beside
            and renamed into place, so a killed run leaves no half-written file.
        weights: start from "imagenet", a checkpoint file the builders accept, or a ``.keras``
            model; the backbone is loaded and a new head sized for the dataset is initialised
            (the head is kept too when a ``.keras`` model has the same number of classes).
        image_size: training/evaluation resolution (any size >= the model's minimum).
        epochs, batch_size: total epochs; global batch size (split over replicas).
        recipe: optimisation settings (`Recipe`: lr per 512 images, warmup, cosine, weight decay
            0.05 off for norms/biases, label smoothing 0.1, optional gradient clipping).
        drop_path_rate: stochastic depth; default per variant (0.1 for b0-b2, 0.3 for b3-b5).
        precision: "float32", "mixed_bfloat16" or "mixed_float16" (loss scaling added
            automatically; attention softmax, norms and the classifier output stay float32).
        jit_compile: compile train/eval steps with XLA.
        strategy: "auto", "mirrored", "multi_worker" (``TF_CONFIG``), "tpu", or a strategy.
        resume: continue an interrupted run in `output` from its last finished epoch; False
            discards any backup and starts over.
        overwrite: train again in an `output` that holds a finished run (refused otherwise, with
            `ValueError`); only this package's files there are replaced.
        augment, shuffle, val_from_train, crop_scale, cache: see `keras_pvt.data.make_pipelines`
            (`val_from_train` selects the best epoch on 10% of ``train``, keeping ``test`` unseen).
        steps_per_epoch: cap on steps per epoch (default: one pass over the training set).
        callbacks: extra Keras callbacks (run after the built-in ones).

    Out-of-range arguments raise `ValueError` before any work; a NaN/infinite loss stops the run
    with `TrainingDivergedError`, keeping the epochs finished before it.
    """
    recipe = recipe or Recipe()
    run_arguments(epochs, batch_size, image_size, steps_per_epoch, drop_path_rate, crop_scale, seed)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}.")
    config, variant_key = _resolve_config(variant)
    if drop_path_rate is None:
        drop_path_rate = DEFAULT_DROP_PATH.get(variant_key, config.drop_path_rate)
    if isinstance(dataset, Pipelines):
        image_size, batch_size = dataset.image_size, dataset.batch_size
    minimum = config.min_input_size()
    if image_size < minimum:
        raise ValueError(
            f"image_size {image_size} is too small for this PVT-v2: it needs at least {minimum}."
        )
    run_folder.refuse_finished(output, overwrite)

    dist = strategy if isinstance(strategy, tf.distribute.Strategy) else get_strategy(strategy, tpu)
    chief = is_chief(dist)
    run_dir = output if chief else tempfile.mkdtemp(prefix="keras_pvt_worker_")
    os.makedirs(run_dir, exist_ok=True)
    backup_dir = os.path.join(output, "backup", *_worker_suffix(dist))
    state = run_folder.prepare(run_dir, backup_dir, resume=resume and not overwrite, check_best=chief)

    if seed is not None:
        keras.utils.set_random_seed(seed)  # before the pipelines: same data order every run
    pipes = (
        dataset
        if isinstance(dataset, Pipelines)
        else make_pipelines(
            dataset,
            image_size=image_size,
            batch_size=batch_size,
            data_dir=data_dir,
            download=download,
            augment=augment,
            shuffle=shuffle,
            val_from_train=val_from_train,
            crop_scale=crop_scale,
            seed=seed,
            cache=cache,
        )
    )
    train_ds, val_ds = _one_hot(pipes.train, pipes.num_classes), _one_hot(pipes.val, pipes.num_classes)
    steps = steps_per_epoch or pipes.steps_per_epoch
    if steps_per_epoch:
        train_ds = train_ds.repeat()
    if seed is not None:
        keras.utils.set_random_seed(seed)  # same initial weights every run

    previous_policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(precision)
    try:
        with dist.scope():
            model = _build_model(config, pipes.num_classes, weights, drop_path_rate)
            model.compile(
                optimizer=recipe.optimizer(model, pipes.batch_size, steps, epochs),
                loss=recipe.loss(),
                metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
                jit_compile=jit_compile,
            )
            if isinstance(dist, tf.distribute.MultiWorkerMirroredStrategy):
                multi_worker.prepare(model, train_ds.element_spec)
        checkpoint = EpochCheckpoint(run_dir, backup_dir, state, MONITOR)
        run_folder.start(
            run_dir,
            {
                "variant": variant_key,
                "config": config.replace(drop_path_rate=drop_path_rate).to_dict(),
                "dataset": dataset if isinstance(dataset, str) else "<pipelines>",
                "class_names": pipes.class_names,
                "image_size": pipes.image_size,
                "batch_size": pipes.batch_size,
                "epochs": epochs,
                "precision": precision,
                "strategy": type(dist).__name__,
                "replicas": dist.num_replicas_in_sync,
                "recipe": dataclasses.asdict(recipe),
                "peak_lr": recipe.peak_lr(pipes.batch_size),
                "weights": weights,
            },
        )
        try:
            model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=epochs,
                initial_epoch=checkpoint.state.epochs_done,
                steps_per_epoch=steps if steps_per_epoch else None,
                callbacks=[StopOnNonFiniteLoss(), checkpoint, *_tensorboard(run_dir), *callbacks],
                shuffle=False,  # the pipeline shuffles
                verbose=verbose,
            )
        except tf.errors.InvalidArgumentError as error:
            raise _explain_data_error(error) from error
    finally:
        keras.mixed_precision.set_dtype_policy(previous_policy)
    return _finish(checkpoint, model, dist, pipes.class_names, output, run_dir, backup_dir)


def _finish(
    checkpoint: EpochCheckpoint,
    model: keras.Model,
    dist: tf.distribute.Strategy,
    class_names: list[str],
    output: str,
    run_dir: str,
    backup_dir: str,
) -> TrainResult:
    """Plot, load the best model, mark the run finished and delete its resume state."""
    chief = run_dir == output
    history = read_history(checkpoint.history_path)
    curves = plot_history(history, os.path.join(run_dir, CURVES)) if chief else None
    best_model = model
    if os.path.exists(checkpoint.best_path):
        with dist.scope(), warnings.catch_warnings():
            # mixed_float16: the saved loss-scale optimizer has extra variables; weights load fine
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            best_model = keras.saving.load_model(checkpoint.best_path)
    state = checkpoint.state
    best_epoch = None if state.best_epoch is None else state.best_epoch + 1
    run_folder.finish(
        run_dir,
        backup_dir,
        {"epochs_run": state.epochs_done, "best_epoch": best_epoch, f"best_{MONITOR}": state.best_value},
    )
    if not chief:
        shutil.rmtree(run_dir, ignore_errors=True)  # the temporary folder made for this worker
    _remove_if_empty(os.path.join(output, "backup"))  # each worker removed its own sub-folder
    return TrainResult(
        model=best_model,
        history=history,
        best_val_accuracy=state.best_value,
        class_names=class_names,
        output=output,
        best_model_path=os.path.join(output, BEST_MODEL),
        history_path=os.path.join(output, HISTORY),
        curves_path=curves,
        epochs_run=state.epochs_done,
    )


def _resolve_config(variant: str | PVTV2Config | Mapping[str, Any]) -> tuple[PVTV2Config, str]:
    if isinstance(variant, PVTV2Config):
        return variant, "custom"
    if isinstance(variant, Mapping):
        return PVTV2Config.from_dict(variant), "custom"
    return get_config(variant), canonical_variant(variant)


def _build_model(
    config: PVTV2Config, num_classes: int, weights: str | None, drop_path_rate: float
) -> keras.Model:
    """A classifier for `num_classes`; backbone (and matching head) copied from `weights`."""
    model = PVT_V2(config, classes=num_classes, drop_path_rate=drop_path_rate)
    if weights is None:
        return model
    if weights.endswith(".keras"):
        if not os.path.exists(weights):
            raise FileNotFoundError(f"No such model file: {weights}")
        source = keras.saving.load_model(weights)
    else:
        source = PVT_V2(config, include_top=False, weights=weights)
    copied = 0
    for layer in model.layers:
        if not layer.weights:
            continue
        try:
            other = source.get_layer(layer.name)
        except ValueError:
            continue
        shapes = [tuple(w.shape) for w in layer.weights]
        if [tuple(w.shape) for w in other.weights] == shapes:
            layer.set_weights(other.get_weights())
            copied += 1
        elif layer.name != "head":
            raise ValueError(
                f"Layer {layer.name!r} of {weights!r} has weight shapes "
                f"{[tuple(w.shape) for w in other.weights]}, the model expects {shapes}: the "
                "checkpoint is for a different architecture; pick the matching variant."
            )
    if not copied:
        raise ValueError(f"{weights!r} shares no layers with this PVT-v2; nothing was loaded.")
    return model


def _remove_if_empty(folder: str) -> None:
    with contextlib.suppress(OSError):  # missing, or another worker's backup is still there
        os.rmdir(folder)


def _one_hot(dataset: tf.data.Dataset, num_classes: int) -> tf.data.Dataset:
    return dataset.map(
        lambda images, labels: (images, tf.one_hot(labels, num_classes)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def _worker_suffix(strategy: tf.distribute.Strategy) -> list[str]:
    resolver = getattr(strategy, "cluster_resolver", None)
    multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    if multi_worker and resolver is not None and resolver.task_type is not None:
        return [f"{resolver.task_type}_{resolver.task_id}"]
    return []


def _tensorboard(run_dir: str) -> list[keras.callbacks.Callback]:
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        return []
    return [keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"))]


def _explain_data_error(error: tf.errors.InvalidArgumentError) -> Exception:
    message = str(error)
    if any(word in message.lower() for word in ("decode", "jpeg", "png", "image")):
        return ValueError(
            "An image failed to decode while training: "
            f"{message.splitlines()[0][:300]}. Remove or re-encode the broken file(s)."
        )
    return error
