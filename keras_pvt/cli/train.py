"""`keras-pvt train`: train or fine-tune a PVT-v2 classifier (``--task classification``, the default),
a Semantic FPN segmenter (``--task segmentation``) or a RetinaNet detector (``--task detection``)
on a tfds dataset, a folder, or the embedded offline dataset, with the paper's recipe, mixed
precision and `tf.distribute`.

Exit codes: 0 done; 2 refused (a bad argument; a dataset file that fails the checks before training,
named, or data refused while training; --output holds a finished run: see --overwrite; detection
without pycocotools), leaving no run folder behind unless it was there before; 3 the loss became
NaN/infinite (the epochs finished before it are kept, resumable)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, TypeVar

from keras_pvt import training
from keras_pvt._requires import PycocotoolsRequiredError
from keras_pvt.segmentation.model import HEADS, LOGITS_STRIDES
from keras_pvt.training import (
    PRECISIONS,
    STRATEGIES,
    DataOptions,
    DetectionDataOptions,
    DetectionRecipe,
    DetectorOptions,
    Recipe,
    RunOptions,
    SegmentationDataOptions,
    SegmentationRecipe,
    SegmenterOptions,
)
from keras_pvt.training.detection_options import DETECTION_EPOCHS, DETECTION_OUTPUT, INVALID_BOXES
from keras_pvt.training.detection_recipe import FROM_SCRATCH_LR, FROM_SCRATCH_WARMUP_STEPS
from keras_pvt.training.segmentation_options import SEGMENTATION_OUTPUT

Options = TypeVar("Options")
TASKS = ("classification", "segmentation", "detection")
CLASSIFICATION, SEGMENTATION, DETECTION = TASKS
# Each flag's destination is the name of an options field. A flag whose default differs between
# the tasks defaults to None here: the task's options dataclass then supplies it.
DATA, RECIPE, RUN = DataOptions(), Recipe(), RunOptions()
SEG_DATA, SEG_RECIPE, SEGMENTER = SegmentationDataOptions(), SegmentationRecipe(), SegmenterOptions()
DET_DATA, DET_RECIPE, DETECTOR = DetectionDataOptions(), DetectionRecipe(), DetectorOptions()
SEG_RUN = RunOptions(output=SEGMENTATION_OUTPUT)
DET_RUN = RunOptions(output=DETECTION_OUTPUT, epochs=DETECTION_EPOCHS)
# The flags only some tasks take (destination: (flag, those tasks)); the others refuse them.
TASK_FLAGS = {
    "crop_scale": ("--crop-scale", (CLASSIFICATION,)),
    "label_smoothing": ("--label-smoothing", (CLASSIFICATION,)),
    "min_lr": ("--min-lr", (CLASSIFICATION, SEGMENTATION)),
    "warmup_epochs": ("--warmup-epochs", (CLASSIFICATION, SEGMENTATION)),
    "head": ("--head", (SEGMENTATION,)),
    "logits_stride": ("--logits-stride", (SEGMENTATION,)),
    "fpn_channels": ("--fpn-channels", (SEGMENTATION, DETECTION)),
    "head_channels": ("--head-channels", (SEGMENTATION, DETECTION)),
    "scale_range": ("--scale-range", (SEGMENTATION,)),
    "reduce_zero_label": ("--reduce-zero-label", (SEGMENTATION,)),
    "ignore_label": ("--ignore-label", (SEGMENTATION,)),
    "backbone_weights": ("--backbone-weights", (DETECTION,)),
    "stacked_convs": ("--stacked-convs", (DETECTION,)),
    "warmup_steps": ("--warmup-steps", (DETECTION,)),
    "eval_every": ("--eval-every", (DETECTION,)),
    "invalid_boxes": ("--invalid-boxes", (DETECTION,)),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train / fine-tune a classifier, a segmenter or a detector with model.fit (tfds, folder, "
        "offline dataset)",
        description=__doc__,
    )
    parser.add_argument(
        "--task", choices=TASKS, default=TASKS[0], help="classification (default), segmentation or detection"
    )
    parser.add_argument(
        "--variant", default="b0", help="preset (the backbone): b0 b1 b2 b2_li b3 b4 b5 (default b0)"
    )
    _data_arguments(parser)
    _segmentation_arguments(parser)
    _detection_arguments(parser)
    _recipe_arguments(parser)
    _run_arguments(parser)
    parser.set_defaults(func=run)


def _per_task(classification: Any, segmentation: Any, detection: Any = None) -> str:
    """The defaults of a flag, by task."""
    text = f"default {classification} (classification) / {segmentation} (segmentation)"
    return text if detection is None else f"{text} / {detection} (detection)"


def image_size(text: str) -> int | tuple[int, int]:
    """``--image-size``: "224" -> 224, "800x1333" -> (800, 1333); the task's options check the values."""
    try:
        sides = [int(part) for part in text.lower().split("x")]
    except ValueError:
        sides = []
    if len(sides) not in (1, 2):
        raise argparse.ArgumentTypeError(f"{text!r} is not SIZE or HEIGHTxWIDTH")
    return sides[0] if len(sides) == 1 else (sides[0], sides[1])


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--dataset",
        help="tfds name (tf_flowers, imagenette/160px; scene_parse150 with masks; coco/2017 with "
        "boxes), a folder (train/CLASS/*.jpg; images/*.jpg + masks/*.png for segmentation; a COCO "
        f"folder for detection), or the embedded offline '{DATA.dataset}[/64px]' / "
        f"'{SEG_DATA.dataset}[/128px]' / '{DET_DATA.dataset}[/128px]' (the defaults)",
    )
    add("--data-dir", default=DATA.data_dir, help="tensorflow-datasets data folder")
    add("--no-download", dest="download", action="store_false", help="never download; fail if not prepared")
    add(
        "--image-size",
        type=image_size,
        metavar="SIZE",
        help="training resolution, a side or HEIGHTxWIDTH (segmentation, detection: e.g. 800x1333) "
        f"({_per_task(DATA.image_size, SEG_DATA.image_size, DET_DATA.image_size)})",
    )
    add(
        "--batch-size",
        type=int,
        help=f"global batch size ({_per_task(DATA.batch_size, SEG_DATA.batch_size, DET_DATA.batch_size)})",
    )
    _add_range(
        add, "--crop-scale", f"classification: random-resized-crop area range (default {DATA.crop_scale})"
    )
    add("--no-augment", dest="augment", action="store_false", help="no random crop/flip (detection: flip)")
    add("--cache", action="store_true", help="cache decoded images in memory")


def _segmentation_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("segmentation (--task segmentation)")
    add = group.add_argument
    add("--head", choices=HEADS, help=f"decode head (default {SEGMENTER.head}: the paper's Semantic FPN)")
    add(
        "--logits-stride",
        type=int,
        choices=LOGITS_STRIDES,
        help="1: the model outputs logits at the input size (default); 4: the stride-4 logits, "
        "resized by the loss and metrics",
    )
    add("--fpn-channels", type=int, help=f"FPN neck width (default {SEGMENTER.fpn_channels}, both tasks)")
    add(
        "--head-channels",
        type=int,
        help=f"head width (default {SEGMENTER.head_channels}; detection {DETECTOR.head_channels})",
    )
    _add_range(add, "--scale-range", f"random rescale range before the crop (default {SEG_DATA.scale_range})")
    _add_switch(
        group,
        "reduce_zero_label",
        (
            "--reduce-zero-label",
            "label 0 is 'other': ignore it and shift the rest down (ADE20K's rule; default: the dataset's)",
        ),
        ("--no-reduce-zero-label", "keep label 0 as a class (the default except for ADE20K)"),
    )
    add(
        "--ignore-label",
        type=int,
        help=f"mask value left out of loss and metrics (default {SEG_DATA.ignore_label})",
    )


def _detection_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "detection (--task detection; needs pip install 'keras-pvt[detection]')"
    )
    add = group.add_argument
    add(
        "--backbone-weights",
        help="the backbone's starting weights ('imagenet', a checkpoint or .keras) when --weights is "
        "not a whole detector",
    )
    add("--stacked-convs", type=int, help=f"head convs per branch (default {DETECTOR.stacked_convs})")
    add(
        "--warmup-steps",
        type=int,
        help=f"linear warmup steps from {DET_RECIPE.warmup_ratio:g} x the lr "
        f"(default {DET_RECIPE.warmup_steps})",
    )
    add("--eval-every", type=int, help="COCO evaluation every N epochs and at the last (default 1)")
    add(
        "--invalid-boxes",
        choices=INVALID_BOXES,
        help="COCO boxes wholly outside their image: refuse (error, the default) or skip them",
    )


def _recipe_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--lr",
        dest="base_lr",
        type=float,
        help=f"learning rate for batch 512 (classification, default {RECIPE.base_lr:g}) or 16 "
        f"(segmentation, default {SEG_RECIPE.base_lr:g}; detection, default {DET_RECIPE.base_lr:g}), "
        "scaled linearly with the batch size",
    )
    add("--min-lr", type=float, help=_per_task(RECIPE.min_lr, SEG_RECIPE.min_lr))
    add("--warmup-epochs", type=float, help=_per_task(RECIPE.warmup_epochs, SEG_RECIPE.warmup_epochs))
    add(
        "--weight-decay",
        type=float,
        help="AdamW decay ("
        + _per_task(RECIPE.weight_decay, SEG_RECIPE.weight_decay, DET_RECIPE.weight_decay)
        + "; classification: not on norms/biases)",
    )
    add("--label-smoothing", type=float, help=f"classification (default {RECIPE.label_smoothing})")
    add("--clip-norm", type=float, default=RECIPE.clip_norm, help="clip each gradient to this L2 norm")


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--weights",
        default=RUN.weights,
        help="start from 'imagenet', a checkpoint file or a .keras model (segmentation / detection: "
        "a whole segmenter / detector - an mmseg / mmdet checkpoint or our .keras - or else the "
        "backbone's weights)",
    )
    add("--epochs", type=int, help=_per_task(RUN.epochs, SEG_RUN.epochs, DET_RUN.epochs))
    add("--steps-per-epoch", type=int, default=RUN.steps_per_epoch, help="cap steps per epoch")
    add(
        "--drop-path",
        dest="drop_path_rate",
        type=float,
        default=RUN.drop_path_rate,
        help="stochastic depth (default per variant; 0.1 for segmentation and detection)",
    )
    add("--precision", choices=PRECISIONS, default=RUN.precision)
    add("--jit-compile", action="store_true", help="compile steps with XLA")
    add(
        "--strategy",
        choices=STRATEGIES,
        default=RUN.strategy,
        help="tf.distribute: auto, mirrored (GPUs), multi_worker (TF_CONFIG), tpu",
    )
    add("--tpu", default=RUN.tpu, help="TPU name/address for --strategy tpu ('' = local TPU VM)")
    _add_switch(
        parser,
        "resume",
        ("--resume", "continue an interrupted run in --output (default)"),
        ("--no-resume", "discard any interrupted run in --output and start over"),
        default=RUN.resume,
    )
    add(
        "--overwrite",
        action="store_true",
        help="train again in an --output that holds a finished run (only keras-pvt's files there "
        "are replaced); without it such a run is left untouched and the command exits with 2",
    )
    add("--seed", type=int, default=RUN.seed)
    add(
        "--output",
        help="run folder: best.keras, history.csv, curves "
        f"({_per_task(RUN.output, SEG_RUN.output, DET_RUN.output)}; detection adds final.keras)",
    )


def _add_range(add: Any, flag: str, help_text: str) -> None:
    """A ``MIN MAX`` pair of floats."""
    add(flag, type=float, nargs=2, metavar=("MIN", "MAX"), help=help_text)


def _add_switch(
    parser: Any, dest: str, on: tuple[str, str], off: tuple[str, str], default: bool | None = None
) -> None:
    """Two exclusive flags, ``(flag, help)`` each, setting `dest` True / False (neither: `default`)."""
    switch = parser.add_mutually_exclusive_group()
    switch.add_argument(on[0], dest=dest, action="store_const", const=True, default=default, help=on[1])
    switch.add_argument(off[0], dest=dest, action="store_const", const=False, help=off[1])


def options_from(args: argparse.Namespace, base: Options) -> Options:
    """`base` (an options dataclass) with every field that has a flag given in `args` replaced."""
    values: dict[str, Any] = vars(args)
    given = {
        f.name: values[f.name]
        for f in dataclasses.fields(base)
        if values.get(f.name) is not None  # None: the flag was not given (the task's default)
    }
    return dataclasses.replace(base, **given)


def run(args: argparse.Namespace) -> int:
    wrong = [
        flag
        for name, (flag, tasks) in TASK_FLAGS.items()
        if args.task not in tasks and getattr(args, name, None) is not None
    ]
    if wrong:
        print(
            f"keras-pvt train: error: not an option of --task {args.task}: {', '.join(wrong)}.",
            file=sys.stderr,
        )
        return 2
    try:
        result, best, what = _train(args)
    except training.TrainingDivergedError as error:
        print(f"keras-pvt train: error: {error}", file=sys.stderr)
        return 3
    except PycocotoolsRequiredError as error:
        print(f"keras-pvt train: error: {error}", file=sys.stderr)
        return 2
    print(
        f"epochs run: {result.epochs_run}; best validation {what}: {'n/a' if best is None else f'{best:.4f}'}"
    )
    print(f"best model: {result.best_model_path}")
    if args.task == DETECTION:
        print(f"last model: {result.final_model_path}")
    print(f"history:    {result.history_path}")
    if result.curves_path:
        print(f"curves:     {result.curves_path}")
    return 0


def _detection_recipe(args: argparse.Namespace) -> DetectionRecipe:
    """The detection recipe of `args`; from scratch (no --weights or --backbone-weights) without
    --lr, the from-scratch rate and warmup instead of the paper's fine-tuning ones, said on stderr."""
    recipe = options_from(args, DET_RECIPE)
    if args.base_lr is not None or args.weights is not None or args.backbone_weights is not None:
        return recipe
    warmup = FROM_SCRATCH_WARMUP_STEPS if args.warmup_steps is None else args.warmup_steps
    print(
        f"keras-pvt train: training from scratch (no --backbone-weights): --lr {FROM_SCRATCH_LR:g} "
        f"per 16 images and {warmup} warmup steps; the paper's {DET_RECIPE.base_lr:g} and "
        f"{DET_RECIPE.warmup_steps} are for fine-tuning an ImageNet backbone (give --lr to choose).",
        file=sys.stderr,
    )
    return dataclasses.replace(recipe, base_lr=FROM_SCRATCH_LR, warmup_steps=warmup)


def _train(args: argparse.Namespace) -> tuple[Any, float | None, str]:
    """Train `args.task`: (its result, the best validation score, that score's name)."""
    if args.task == SEGMENTATION:
        result = training.train_segmentation(
            args.variant,
            data=options_from(args, SEG_DATA),
            recipe=options_from(args, SEG_RECIPE),
            run=options_from(args, SEG_RUN),
            segmenter=options_from(args, SEGMENTER),
        )
        return result, result.best_val_mean_iou, "mean IoU"
    if args.task == DETECTION:
        result = training.train_detection(
            args.variant,
            data=options_from(args, DET_DATA),
            recipe=_detection_recipe(args),
            run=options_from(args, DET_RUN),
            detector=options_from(args, DETECTOR),
            eval_every=1 if args.eval_every is None else args.eval_every,
        )
        return result, result.best_val_ap, "COCO AP"
    result = training.train(
        args.variant,
        data=options_from(args, DATA),
        recipe=options_from(args, RECIPE),
        run=options_from(args, RUN),
    )
    return result, result.best_val_accuracy, "accuracy"
