"""`train_segmentation`: train a PVT-v2 Semantic FPN with `model.fit`, resumably, in a run folder."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

from keras_pvt._keywords import options_from
from keras_pvt.config import PVTV2Config
from keras_pvt.data.seg_pipeline import SegmentationPipelines, make_segmentation_pipelines
from keras_pvt.data.seg_shapes import SEG_DATASET_NAME
from keras_pvt.segmentation.backbone import SEGMENTATION_DROP_PATH_RATE
from keras_pvt.segmentation.losses import IGNORE_LABEL
from keras_pvt.segmentation.metrics import MeanIoU, PixelAccuracy
from keras_pvt.segmentation.model import SemanticFPN
from keras_pvt.training import multi_worker
from keras_pvt.training.options import RunOptions
from keras_pvt.training.resumable_fit import (
    Placement,
    RunResult,
    fit_in_run_folder,
    make_pipelines_from,
    run_info,
    start_run,
)
from keras_pvt.training.segmentation_options import (
    SEGMENTATION_OUTPUT,
    SegmentationDataOptions,
    SegmenterOptions,
)
from keras_pvt.training.segmentation_recipe import SegmentationRecipe
from keras_pvt.training.task_model import build_whole_or_backbone, compile_for_run
from keras_pvt.training.variant_config import check_image_size, resolve_backbone

MONITOR = "val_mean_iou"


@dataclasses.dataclass
class SegmentationTrainResult(RunResult):
    """What a run produced: the best model (by validation mean IoU), its files and per-class IoU."""

    best_val_mean_iou: float | None
    per_class_iou: dict[str, float | None]  # the best model on the validation set; None: unseen


def train_segmentation(
    backbone: str | PVTV2Config | Mapping[str, Any] = "b0",
    *,
    data: SegmentationDataOptions | None = None,
    recipe: SegmentationRecipe | None = None,
    run: RunOptions | None = None,
    segmenter: SegmenterOptions | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: str | int = "auto",
    dataset: str | SegmentationPipelines = SEG_DATASET_NAME,
    image_size: int | tuple[int, int] = 256,
    batch_size: int = 8,
    data_dir: str | None = None,
    download: bool = True,
    augment: bool = True,
    shuffle: bool = True,
    val_from_train: bool = False,
    scale_range: tuple[float, float] = (0.5, 2.0),
    reduce_zero_label: bool | None = None,
    ignore_label: int = IGNORE_LABEL,
    cache: bool = False,
    output: str = SEGMENTATION_OUTPUT,
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
    head: str = "fpn",
    fpn_channels: int = 256,
    head_channels: int = 128,
    dropout: float = 0.1,
    logits_stride: int = 1,
) -> SegmentationTrainResult:
    """Train a Semantic FPN on `backbone` with the paper's ADE20K recipe; write the run to a folder.

    Args:
        backbone: preset name ("b0" ... "b5", "b2_li"), a `PVTV2Config` or its dict.
        data: the images and masks (`SegmentationDataOptions`: dataset, image_size, batch_size,
            scale_range, reduce_zero_label, ignore_label, ...).
        recipe: optimisation (`SegmentationRecipe`: AdamW, lr 2e-4 per 16 images, poly 0.9,
            weight decay 1e-4).
        run: output folder (default ``runs/semantic_fpn``), starting weights, epochs, precision,
            strategy, resume (`RunOptions`). ``weights`` is a whole segmenter (an mmseg checkpoint
            or our ``.keras`` / ``.weights.h5`` with the dataset's class count) or, when it is not
            one, the backbone's ("imagenet", a classification checkpoint or ``.keras``).
        segmenter: the head (`SegmenterOptions`: head, fpn/head channels, dropout, logits_stride).
        callbacks: extra Keras callbacks (run after the built-in ones).
        verbose: `model.fit` verbosity; when not 0 the per-class IoU table is printed at the end.
        dataset ... cache: the fields of `SegmentationDataOptions` (documented there), by name.
        output ... seed: the fields of `RunOptions` (documented there), by name.
        head ... logits_stride: the fields of `SegmenterOptions` (documented there), by name.

    Without `data` / `run` / `segmenter` the fields by name make them; with them, each field given
    by name (other than its default) replaces theirs:
    ``train_segmentation("b0", dataset="scene_parse150", weights="imagenet", epochs=5)``.

    Writes ``best.keras`` (best ``val_mean_iou``), ``history.csv`` (loss, mean_iou,
    pixel_accuracy and their ``val_`` columns), ``training_curves.png``, ``logs/`` (TensorBoard)
    and ``run.json`` (task "segmentation"; ``per_class_iou``: the best model's validation IoU
    per class, in ``class_names`` order, null for a class never labelled nor predicted), with
    `train`'s resume and safety rules.
    """
    arguments = locals()
    data = options_from(train_segmentation, arguments, SegmentationDataOptions, data)
    run = options_from(train_segmentation, arguments, RunOptions, run)
    segmenter = options_from(train_segmentation, arguments, SegmenterOptions, segmenter)
    recipe = recipe or SegmentationRecipe()
    config, variant_key = resolve_backbone(backbone, run.drop_path_rate, SEGMENTATION_DROP_PATH_RATE)
    check_image_size(config, min(data.sides))
    place = start_run(run)
    pipes = make_pipelines_from(data, make_segmentation_pipelines, SegmentationPipelines, run.seed)
    loaded: list[str] = []  # what run.weights filled, once built
    outcome = fit_in_run_folder(
        place,
        run,
        train=pipes.train,
        val=pipes.val,
        steps_per_epoch=pipes.steps_per_epoch,
        build=functools.partial(
            _compiled_segmenter, config, variant_key, segmenter, recipe, run, pipes, loaded
        ),
        info={
            **_segmentation_info(variant_key, config, segmenter, data, pipes),
            **run_info(data, recipe, run, pipes, place.strategy),
        },
        monitor=MONITOR,
        callbacks=callbacks,
        verbose=verbose,
        evaluate=_per_class_evaluation(
            pipes, run, recipe.loss(pipes.ignore_label), lambda: loaded[-1] if loaded else None
        ),
    )
    per_class = dict(zip(pipes.class_names, outcome.results["per_class_iou"]))
    if verbose:
        print(per_class_table(per_class))
    return SegmentationTrainResult(
        **outcome.result_fields(pipes.class_names, run.output),
        best_val_mean_iou=outcome.best_value,
        per_class_iou=per_class,
    )


def per_class_table(per_class: Mapping[str, float | None]) -> str:
    """The per-class IoU as an aligned text table (percent, as mmseg prints it)."""
    width = max([len("class"), *(len(name) for name in per_class)])
    lines = [f"{'class':<{width}}  IoU (%)"]
    for name, value in per_class.items():
        lines.append(f"{name:<{width}}  {'n/a' if value is None else f'{100 * value:6.2f}'}")
    seen = [v for v in per_class.values() if v is not None]
    mean = f"{100 * sum(seen) / len(seen):6.2f}" if seen else "n/a"
    lines.append(f"{'mean':<{width}}  {mean}")
    return "\n".join(lines)


def _compiled_segmenter(
    config: PVTV2Config,
    variant_key: str,
    segmenter: SegmenterOptions,
    recipe: SegmentationRecipe,
    run: RunOptions,
    pipes: SegmentationPipelines,
    loaded: list[str],
    steps: int,
) -> keras.Model:
    """The segmenter, compiled for a run of `steps` steps per epoch; appends what its weights
    came from to `loaded`."""
    model, what = _build_segmenter(config, variant_key, pipes.num_classes, run.weights, segmenter)
    loaded.append(what)
    return compile_for_run(
        model,
        recipe,
        run,
        pipes.batch_size,
        steps,
        loss=recipe.loss(pipes.ignore_label),
        metrics=_metrics(pipes),
    )


def _segmentation_info(
    variant_key: str,
    config: PVTV2Config,
    segmenter: SegmenterOptions,
    data: SegmentationDataOptions,
    pipes: SegmentationPipelines,
) -> dict[str, Any]:
    """What ``run.json`` records of the segmenter and the masks."""
    return {
        "task": "segmentation",
        "variant": variant_key,
        "config": config.to_dict(),
        "segmenter": dataclasses.asdict(segmenter),
        "ignore_label": pipes.ignore_label,
        "reduce_zero_label": pipes.reduce_zero_label,
        "scale_range": list(data.scale_range),
    }


def _metrics(pipes: SegmentationPipelines) -> list[keras.metrics.Metric]:
    return [MeanIoU(pipes.num_classes, pipes.ignore_label), PixelAccuracy(pipes.ignore_label)]


def _build_segmenter(
    config: PVTV2Config,
    variant_key: str,
    num_classes: int,
    weights: str | None,
    segmenter: SegmenterOptions,
) -> tuple[keras.Model, str]:
    """The segmenter and what `weights` filled: "segmenter" (all of it), "backbone" or "none"."""

    def make(**loading: Any) -> keras.Model:
        return SemanticFPN(
            config if variant_key == "custom" else variant_key,
            num_classes,
            drop_path_rate=config.drop_path_rate,
            **dataclasses.asdict(segmenter),
            **loading,
        )

    return build_whole_or_backbone(make, weights, "segmenter")


def _per_class_evaluation(
    pipes: SegmentationPipelines, run: RunOptions, loss: keras.losses.Loss, loaded: Callable[[], str | None]
) -> Callable[[keras.Model, Placement], dict[str, Any]]:
    """The end of a run: the best model's per-class IoU and pixel accuracy on the validation set."""

    def evaluate(model: keras.Model, place: Placement) -> dict[str, Any]:
        with place.strategy.scope():
            evaluator = keras.Model(model.inputs, model.outputs, name="per_class_evaluation")
            metrics = _metrics(pipes)
            evaluator.compile(loss=loss, metrics=metrics, jit_compile=run.jit_compile)
            if isinstance(place.strategy, tf.distribute.MultiWorkerMirroredStrategy):
                multi_worker.prepare(evaluator, pipes.val.element_spec)
        scores = evaluator.evaluate(pipes.val, verbose=0, return_dict=True)
        iou = metrics[0].per_class_iou()
        per_class = {
            name: (None if math.isnan(value) else float(value)) for name, value in zip(pipes.class_names, iou)
        }
        return {
            "per_class_iou": list(per_class.values()),  # in class_names' order (run.json sorts keys)
            "best_model_val_mean_iou": float(scores["mean_iou"]),
            "best_model_val_pixel_accuracy": float(scores["pixel_accuracy"]),
            "weights_loaded": loaded(),
        }

    return evaluate
