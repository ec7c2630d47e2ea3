"""`train_detection`: train a PVT-v2 RetinaNet with `model.fit`, resumably, in a run folder."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

from keras_pvt._keywords import options_from
from keras_pvt._requires import require_pycocotools
from keras_pvt.config import PVTV2Config
from keras_pvt.data.det_pipeline import DetectionPipelines, make_detection_pipelines
from keras_pvt.data.det_shapes import DET_DATASET_NAME
from keras_pvt.data.sources import DEFAULT_VAL_FRACTION
from keras_pvt.detection.callbacks import CocoEvaluation
from keras_pvt.detection.coco_eval import METRIC_NAMES
from keras_pvt.detection.model import RetinaNet, detector_model, raw_model
from keras_pvt.limits import integer
from keras_pvt.segmentation.backbone import SEGMENTATION_DROP_PATH_RATE
from keras_pvt.training.detection_options import (
    DETECTION_EPOCHS,
    DETECTION_OUTPUT,
    DetectionDataOptions,
    DetectorOptions,
)
from keras_pvt.training.detection_recipe import DetectionRecipe
from keras_pvt.training.options import RunOptions
from keras_pvt.training.outputs import read_history
from keras_pvt.training.resumable_fit import (
    Placement,
    RunResult,
    fit_in_run_folder,
    make_pipelines_from,
    run_info,
    start_run,
)
from keras_pvt.training.run_folder import FINAL_MODEL, HISTORY
from keras_pvt.training.task_model import build_whole_or_backbone, compile_for_run
from keras_pvt.training.variant_config import check_image_size, resolve_backbone

MONITOR = "val_ap"
DETECTION_DROP_PATH_RATE = SEGMENTATION_DROP_PATH_RATE  # 0.1, as the paper's detection configs


@dataclasses.dataclass
class DetectionTrainResult(RunResult):
    """What a run produced: the best detector (by validation COCO AP), its files and its COCO
    metrics. `model` and both files are detectors (images -> boxes), not the raw training outputs."""

    best_val_ap: float | None
    best_metrics: dict[str, float | None]  # the best epoch's ap, ap50, ...; None: not defined
    final_model_path: str


def train_detection(
    variant: str | PVTV2Config | Mapping[str, Any] = "b0",
    *,
    data: DetectionDataOptions | None = None,
    recipe: DetectionRecipe | None = None,
    run: RunOptions | None = None,
    detector: DetectorOptions | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: str | int = "auto",
    eval_every: int = 1,
    dataset: str | DetectionPipelines = DET_DATASET_NAME,
    image_size: int | tuple[int, int] = 128,
    batch_size: int = 8,
    data_dir: str | None = None,
    download: bool = True,
    augment: bool = True,
    shuffle: bool = True,
    cache: bool = False,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    invalid_boxes: str = "error",
    output: str = DETECTION_OUTPUT,
    weights: str | None = None,
    epochs: int = DETECTION_EPOCHS,
    steps_per_epoch: int | None = None,
    drop_path_rate: float | None = None,
    precision: str = "float32",
    jit_compile: bool = False,
    strategy: str | tf.distribute.Strategy = "auto",
    tpu: str | None = None,
    resume: bool = True,
    overwrite: bool = False,
    seed: int | None = 0,
    backbone_weights: str | None = None,
    fpn_channels: int = 256,
    head_channels: int = 256,
    stacked_convs: int = 4,
) -> DetectionTrainResult:
    """Train a RetinaNet on `variant` with the paper's 1x recipe; write the run to a folder.

    Args:
        variant: the backbone: preset name ("b0" ... "b5", "b2_li"), a `PVTV2Config` or its dict.
        data: the images and boxes (`DetectionDataOptions`: dataset, image_size, batch_size, ...).
        recipe: optimisation (`DetectionRecipe`: AdamW, lr 1e-4 per 16 images, 500 warmup steps,
            x0.1 at epochs 8 and 11 of 12, weight decay 1e-4, no clipping; focal and L1 losses).
        run: output folder (default ``runs/retinanet``), starting weights, epochs (default 12),
            precision, strategy, resume (`RunOptions`). ``weights`` is a whole detector (an mmdet
            RetinaNet checkpoint, or our ``.keras`` / ``.weights.h5`` with the dataset's class
            count) or, when it is not one, the backbone's ("imagenet", a classification checkpoint
            or ``.keras``).
        detector: the neck and head (`DetectorOptions`: backbone_weights, fpn/head channels,
            stacked convs).
        callbacks: extra Keras callbacks (run after the built-in ones).
        verbose: `model.fit` verbosity; when not 0 the best epoch's COCO metrics are printed.
        eval_every: COCO evaluation every `eval_every` epochs and at the last one; the others
            log NaN and cannot be the best.
        dataset ... invalid_boxes: the fields of `DetectionDataOptions` (documented there), by name.
        output ... seed: the fields of `RunOptions` (documented there), by name.
        backbone_weights ... stacked_convs: the fields of `DetectorOptions`, by name.

    Without `data` / `run` / `detector` the fields by name make them; with them, each field
    given by name (other than its default) replaces theirs:
    ``train_detection("b0", dataset="/data/coco", image_size=(800, 1333), backbone_weights="imagenet")``.

    The raw outputs are fitted with mmdet's focal and L1 losses; after each epoch the detector
    (the same weights with the post-processing) is scored on the validation set with pycocotools
    (`CocoEvaluation`). Writes ``best.keras`` (the epoch with the best ``val_ap``) and
    ``final.keras`` (the last epoch), both detectors that load with ``safe_mode=True``,
    ``history.csv`` (loss, ``cls_logits_loss``, ``box_deltas_loss``, ``val_ap``, ``val_ap50``, ``val_ap75``,
    ``val_ap_small``, ``val_ap_medium``, ``val_ap_large``), ``training_curves.png``, ``logs/``
    (TensorBoard) and ``run.json`` (task "detection"; ``best_coco``: the best epoch's metrics),
    with `train`'s resume and safety rules. Needs pycocotools (``pip install
    'keras-pvt[detection]'``): without it `PycocotoolsRequiredError` (an ImportError) before any work.
    """
    arguments = locals()
    require_pycocotools("train_detection (COCO mAP selects the best epoch)")
    data = options_from(train_detection, arguments, DetectionDataOptions, data)
    run = options_from(train_detection, arguments, RunOptions, run)
    detector = options_from(train_detection, arguments, DetectorOptions, detector)
    recipe = recipe or DetectionRecipe()
    eval_every = integer("eval_every", eval_every)
    config, variant_key = resolve_backbone(variant, run.drop_path_rate, DETECTION_DROP_PATH_RATE)
    check_image_size(config, min(data.sides))
    place = start_run(run)
    pipes = make_pipelines_from(data, make_detection_pipelines, DetectionPipelines, run.seed)
    loaded: list[str] = []  # what the weights filled, once built
    evaluation = CocoEvaluation(
        pipes.val, pipes.category_ids, pipes.class_names, pipes.val_ground_truth, every=eval_every
    )
    outcome = fit_in_run_folder(
        place,
        run,
        train=pipes.train,
        val=None,  # the validation set is scored by `evaluation`, not by model.fit
        steps_per_epoch=pipes.steps_per_epoch,
        build=functools.partial(
            _compiled_detector, config, variant_key, detector, recipe, run, pipes, loaded
        ),
        info={
            **_detection_info(variant_key, config, detector, pipes, eval_every),
            **run_info(data, recipe, run, pipes, place.strategy),
        },
        monitor=MONITOR,
        callbacks=callbacks,
        verbose=verbose,
        evaluate=_best_epoch_metrics(lambda: loaded[-1] if loaded else None),
        epoch_callbacks=[evaluation],
        saved=detector_model,
        final_model=True,
    )
    best = outcome.results["best_coco"]
    if verbose:
        print(coco_table(best))
    return DetectionTrainResult(
        **outcome.result_fields(pipes.class_names, run.output),
        best_val_ap=outcome.best_value,
        best_metrics=best,
        final_model_path=os.path.join(run.output, FINAL_MODEL),
    )


def coco_table(metrics: Mapping[str, float | None]) -> str:
    """The COCO metrics as an aligned text table (percent, as mmdet prints them)."""
    width = max(len(name) for name in metrics) if metrics else 0
    lines = [f"{'metric':<{width}}  value (%)"]
    for name, value in metrics.items():
        lines.append(f"{name:<{width}}  {'n/a' if value is None else f'{100 * value:6.2f}'}")
    return "\n".join(lines)


def _compiled_detector(
    config: PVTV2Config,
    variant_key: str,
    detector: DetectorOptions,
    recipe: DetectionRecipe,
    run: RunOptions,
    pipes: DetectionPipelines,
    loaded: list[str],
    steps: int,
) -> keras.Model:
    """The raw-output RetinaNet, compiled for a run of `steps` steps per epoch; appends what its
    weights came from to `loaded`."""
    model, what = _build_detector(config, variant_key, pipes.num_classes, run.weights, detector)
    loaded.append(what)
    return compile_for_run(model, recipe, run, pipes.batch_size, steps, loss=recipe.loss())


def _detection_info(
    variant_key: str,
    config: PVTV2Config,
    detector: DetectorOptions,
    pipes: DetectionPipelines,
    eval_every: int,
) -> dict[str, Any]:
    """What ``run.json`` records of the detector and the boxes."""
    return {
        "task": "detection",
        "variant": variant_key,
        "config": config.to_dict(),
        "detector": dataclasses.asdict(detector),
        "category_ids": list(pipes.category_ids),
        "eval_every": eval_every,
    }


def _build_detector(
    config: PVTV2Config,
    variant_key: str,
    num_classes: int,
    weights: str | None,
    detector: DetectorOptions,
) -> tuple[keras.Model, str]:
    """The raw-output RetinaNet and what the weights filled: "detector" (all of it), "backbone"
    or "none". Built whole, then its raw outputs taken (same weights): a Keras file of a detector
    (``best.keras``, ``final.keras``) fits only the whole detector."""

    def make(**loading: Any) -> keras.Model:
        return raw_model(
            RetinaNet(
                config if variant_key == "custom" else variant_key,
                num_classes,
                drop_path_rate=config.drop_path_rate,
                fpn_channels=detector.fpn_channels,
                head_channels=detector.head_channels,
                stacked_convs=detector.stacked_convs,
                **loading,
            )
        )

    backbone = detector.backbone_weights
    if weights is None and backbone is not None:
        return make(backbone_weights=backbone), "backbone"
    if backbone is not None:  # `weights` must then be a whole detector
        return build_whole_or_backbone(
            lambda **loading: make(backbone_weights=backbone, **loading),
            weights,
            "detector",
            backbone_fallback=False,
        )
    return build_whole_or_backbone(make, weights, "detector")


def _best_epoch_metrics(
    loaded: Callable[[], str | None],
) -> Callable[[keras.Model, Placement], dict[str, Any]]:
    """The end of a run: the best epoch's COCO metrics (its history row: the same weights as
    ``best.keras``) and what the starting weights filled."""

    def evaluate(model: keras.Model, place: Placement) -> dict[str, Any]:
        history = read_history(os.path.join(place.run_dir, HISTORY))
        scores = history.get(MONITOR, [])
        finite = [i for i, value in enumerate(scores) if math.isfinite(value)]
        best = max(finite, key=lambda i: scores[i], default=None)  # the first of equal scores
        metrics = {
            name: _finite_or_none(history[f"val_{name}"][best] if best is not None else math.nan)
            for name in METRIC_NAMES
        }
        return {"best_coco": metrics, "weights_loaded": loaded()}

    return evaluate


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
