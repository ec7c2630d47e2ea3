"""`train`: fine-tune or train a PVT-v2 with `model.fit` on a tfds / image-folder pipeline."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

from keras_pvt._keywords import replace_fields
from keras_pvt.config import PVTV2Config
from keras_pvt.data import Pipelines, make_pipelines
from keras_pvt.model import PVT_V2
from keras_pvt.presets import DEFAULT_DROP_PATH, canonical_variant, get_config
from keras_pvt.training import multi_worker, run_folder
from keras_pvt.training.backup import RunState
from keras_pvt.training.callbacks import EpochCheckpoint, StopOnNonFiniteLoss
from keras_pvt.training.options import DataOptions, RunOptions
from keras_pvt.training.outputs import plot_history, read_history
from keras_pvt.training.recipe import Recipe
from keras_pvt.training.run_folder import BEST_MODEL, CURVES, HISTORY
from keras_pvt.training.strategy import get_strategy, is_chief
from keras_pvt.weights import load_weights

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
    data: DataOptions | None = None,
    recipe: Recipe | None = None,
    run: RunOptions | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: str | int = "auto",
    **options: Any,
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
        **options: any field of `DataOptions` or `RunOptions` by name, replacing it in `data` /
            `run`: ``train("b0", dataset="tf_flowers", weights="imagenet", epochs=5)``.

    Out-of-range arguments raise `ValueError` before any work; a NaN/infinite loss stops the run
    with `TrainingDivergedError`, keeping the epochs finished before it.
    """
    data, run = replace_fields("train", options, data or DataOptions(), run or RunOptions())
    recipe = recipe or Recipe()
    config, variant_key = _resolve_config(variant)
    drop_path_rate = run.drop_path_rate
    if drop_path_rate is None:
        drop_path_rate = DEFAULT_DROP_PATH.get(variant_key, config.drop_path_rate)
    config = config.replace(drop_path_rate=drop_path_rate)
    _check_image_size(config, data.image_size)
    run_folder.refuse_finished(run.output, run.overwrite)
    place = _place(run)
    if run.seed is not None:
        keras.utils.set_random_seed(run.seed)  # before the pipelines: same data order every run
    pipes = _pipelines(data, run.seed)
    train_ds, val_ds = _one_hot(pipes.train, pipes.num_classes), _one_hot(pipes.val, pipes.num_classes)
    steps = run.steps_per_epoch or pipes.steps_per_epoch
    if run.steps_per_epoch:
        train_ds = train_ds.repeat()
    if run.seed is not None:
        keras.utils.set_random_seed(run.seed)  # same initial weights every run

    previous_policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(run.precision)
    try:
        with place.strategy.scope():
            model = _build_model(config, pipes.num_classes, run.weights, variant_key)
            _compile(model, recipe, run, pipes.batch_size, steps)
            if isinstance(place.strategy, tf.distribute.MultiWorkerMirroredStrategy):
                multi_worker.prepare(model, train_ds.element_spec)
        checkpoint = EpochCheckpoint(place.run_dir, place.backup_dir, place.state, MONITOR)
        info = _run_info(variant_key, config, data, recipe, run, pipes, place.strategy)
        run_folder.start(place.run_dir, info)
        try:
            model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=run.epochs,
                initial_epoch=checkpoint.state.epochs_done,
                steps_per_epoch=steps if run.steps_per_epoch else None,
                callbacks=[StopOnNonFiniteLoss(), checkpoint, *_tensorboard(place.run_dir), *callbacks],
                shuffle=False,  # the pipeline shuffles
                verbose=verbose,
            )
        except tf.errors.InvalidArgumentError as error:
            raise _explain_data_error(error) from error
    finally:
        keras.mixed_precision.set_dtype_policy(previous_policy)
    return _finish(checkpoint, model, place, pipes.class_names, run.output)


@dataclasses.dataclass
class _Placement:
    """Where a process of the run trains and writes: the strategy, its folder and resume state."""

    strategy: tf.distribute.Strategy
    run_dir: str  # the output folder (chief), or a temporary one (other workers)
    backup_dir: str
    state: RunState | None


def _place(run: RunOptions) -> _Placement:
    """Pick the strategy, make this process's folder and clean it, read the state to resume."""
    strategy = run.strategy
    if not isinstance(strategy, tf.distribute.Strategy):
        strategy = get_strategy(strategy, run.tpu)
    chief = is_chief(strategy)
    run_dir = run.output if chief else tempfile.mkdtemp(prefix="keras_pvt_worker_")
    os.makedirs(run_dir, exist_ok=True)
    backup_dir = os.path.join(run.output, "backup", *_worker_suffix(strategy))
    resume = run.resume and not run.overwrite
    state = run_folder.prepare(run_dir, backup_dir, resume=resume, check_best=chief)
    return _Placement(strategy, run_dir, backup_dir, state)


def _pipelines(data: DataOptions, seed: int | None) -> Pipelines:
    if isinstance(data.dataset, Pipelines):
        return data.dataset
    return make_pipelines(
        data.dataset,
        image_size=data.image_size,
        batch_size=data.batch_size,
        data_dir=data.data_dir,
        download=data.download,
        augment=data.augment,
        shuffle=data.shuffle,
        val_from_train=data.val_from_train,
        crop_scale=data.crop_scale,
        seed=seed,
        cache=data.cache,
    )


def _compile(model: keras.Model, recipe: Recipe, run: RunOptions, batch_size: int, steps: int) -> None:
    model.compile(
        optimizer=recipe.optimizer(model, batch_size, steps, run.epochs),
        loss=recipe.loss(),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=run.jit_compile,
    )


def _run_info(
    variant_key: str,
    config: PVTV2Config,
    data: DataOptions,
    recipe: Recipe,
    run: RunOptions,
    pipes: Pipelines,
    strategy: tf.distribute.Strategy,
) -> dict[str, Any]:
    """What ``run.json`` records about the run."""
    return {
        "variant": variant_key,
        "config": config.to_dict(),
        "dataset": data.dataset if isinstance(data.dataset, str) else "<pipelines>",
        "class_names": pipes.class_names,
        "image_size": pipes.image_size,
        "batch_size": pipes.batch_size,
        "epochs": run.epochs,
        "precision": run.precision,
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "recipe": dataclasses.asdict(recipe),
        "peak_lr": recipe.peak_lr(pipes.batch_size),
        "weights": run.weights,
    }


def _finish(
    checkpoint: EpochCheckpoint,
    model: keras.Model,
    place: _Placement,
    class_names: list[str],
    output: str,
) -> TrainResult:
    """Plot, load the best model, mark the run finished and delete its resume state."""
    chief = place.run_dir == output
    history = read_history(checkpoint.history_path)
    curves = plot_history(history, os.path.join(place.run_dir, CURVES)) if chief else None
    best_model = model
    if os.path.exists(checkpoint.best_path):
        with place.strategy.scope(), warnings.catch_warnings():
            # mixed_float16: the saved loss-scale optimizer has extra variables; weights load fine
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            best_model = keras.saving.load_model(checkpoint.best_path)
    state = checkpoint.state
    best_epoch = None if state.best_epoch is None else state.best_epoch + 1
    run_folder.finish(
        place.run_dir,
        place.backup_dir,
        {"epochs_run": state.epochs_done, "best_epoch": best_epoch, f"best_{MONITOR}": state.best_value},
    )
    if not chief:
        shutil.rmtree(place.run_dir, ignore_errors=True)  # the temporary folder made for this worker
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


def _check_image_size(config: PVTV2Config, image_size: int) -> None:
    minimum = config.min_input_size()
    if image_size < minimum:
        raise ValueError(
            f"image_size {image_size} is too small for this PVT-v2: it needs at least {minimum}."
        )


def _build_model(config: PVTV2Config, num_classes: int, weights: str | None, variant_key: str) -> keras.Model:
    """A classifier for `num_classes`, its weights loaded from `weights` by the builders' loader
    (`keras_pvt.weights.load_weights`): all of them when the saved head has `num_classes`
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
    several = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    if several and resolver is not None and resolver.task_type is not None:
        return [f"{resolver.task_type}_{resolver.task_id}"]
    return []


def _tensorboard(run_dir: str) -> list[keras.callbacks.Callback]:
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
