"""`keras-pvt train`: train or fine-tune a PVT-v2 classifier (``--task classification``, the default)
or a Semantic FPN segmenter (``--task segmentation``) on a tfds dataset, an image folder, or the
embedded offline dataset, with the paper's recipe, mixed precision and `tf.distribute`.

Exit codes: 0 done; 2 refused (a bad argument; a dataset file that fails the checks before training,
named, or data refused while training; --output holds a finished run: see --overwrite), leaving no
run folder behind unless it was there before; 3 the loss became NaN/infinite (the epochs finished
before it are kept, resumable)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, TypeVar

from keras_pvt import training
from keras_pvt.segmentation.model import HEADS, LOGITS_STRIDES
from keras_pvt.training import (
    PRECISIONS,
    STRATEGIES,
    DataOptions,
    Recipe,
    RunOptions,
    SegmentationDataOptions,
    SegmentationRecipe,
    SegmenterOptions,
)
from keras_pvt.training.segmentation_options import SEGMENTATION_OUTPUT

Options = TypeVar("Options")
TASKS = ("classification", "segmentation")
# Each flag's destination is the name of an options field. A flag whose default differs between
# the tasks defaults to None here: the task's options dataclass then supplies it.
DATA, RECIPE, RUN = DataOptions(), Recipe(), RunOptions()
SEG_DATA, SEG_RECIPE, SEGMENTER = SegmentationDataOptions(), SegmentationRecipe(), SegmenterOptions()
CLASSIFICATION_ONLY = {"crop_scale": "--crop-scale", "label_smoothing": "--label-smoothing"}
SEGMENTATION_ONLY = {
    "head": "--head",
    "logits_stride": "--logits-stride",
    "fpn_channels": "--fpn-channels",
    "head_channels": "--head-channels",
    "scale_range": "--scale-range",
    "reduce_zero_label": "--reduce-zero-label",
    "ignore_label": "--ignore-label",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train / fine-tune a classifier or a segmenter with model.fit (tfds, folder, offline dataset)",
        description=__doc__,
    )
    parser.add_argument(
        "--task", choices=TASKS, default=TASKS[0], help="classification (default) or segmentation"
    )
    parser.add_argument(
        "--variant", default="b0", help="preset (the backbone): b0 b1 b2 b2_li b3 b4 b5 (default b0)"
    )
    _data_arguments(parser)
    _segmentation_arguments(parser)
    _recipe_arguments(parser)
    _run_arguments(parser)
    parser.set_defaults(func=run)


def _both(classification: Any, segmentation: Any) -> str:
    return f"default {classification} (classification) / {segmentation} (segmentation)"


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--dataset",
        help="tfds name (tf_flowers, imagenette/160px; scene_parse150 with masks), a folder "
        "(train/CLASS/*.jpg; images/*.jpg + masks/*.png for segmentation), or the embedded offline "
        f"'{DATA.dataset}[/64px]' / '{SEG_DATA.dataset}[/128px]' (the defaults)",
    )
    add("--data-dir", default=DATA.data_dir, help="tensorflow-datasets data folder")
    add("--no-download", dest="download", action="store_false", help="never download; fail if not prepared")
    add("--image-size", type=int, help=f"training resolution ({_both(DATA.image_size, SEG_DATA.image_size)})")
    add("--batch-size", type=int, help=f"global batch size ({_both(DATA.batch_size, SEG_DATA.batch_size)})")
    _add_range(
        add, "--crop-scale", f"classification: random-resized-crop area range (default {DATA.crop_scale})"
    )
    add("--no-augment", dest="augment", action="store_false", help="no random crop/flip")
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
    add("--fpn-channels", type=int, help=f"FPN neck width (default {SEGMENTER.fpn_channels})")
    add("--head-channels", type=int, help=f"head width (default {SEGMENTER.head_channels})")
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


def _recipe_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--lr",
        dest="base_lr",
        type=float,
        help=f"learning rate for batch 512 (classification, default {RECIPE.base_lr:g}) or 16 "
        f"(segmentation, default {SEG_RECIPE.base_lr:g}), scaled linearly with the batch size",
    )
    add("--min-lr", type=float, help=_both(RECIPE.min_lr, SEG_RECIPE.min_lr))
    add("--warmup-epochs", type=float, help=_both(RECIPE.warmup_epochs, SEG_RECIPE.warmup_epochs))
    add(
        "--weight-decay",
        type=float,
        help=f"AdamW decay ({_both(RECIPE.weight_decay, SEG_RECIPE.weight_decay)}; classification: "
        "not on norms/biases)",
    )
    add("--label-smoothing", type=float, help=f"classification (default {RECIPE.label_smoothing})")
    add("--clip-norm", type=float, default=RECIPE.clip_norm, help="clip each gradient to this L2 norm")


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--weights",
        default=RUN.weights,
        help="start from 'imagenet', a checkpoint file or a .keras model (segmentation: a whole "
        "segmenter - an mmseg checkpoint or our .keras - or else the backbone's weights)",
    )
    add("--epochs", type=int, default=RUN.epochs)
    add("--steps-per-epoch", type=int, default=RUN.steps_per_epoch, help="cap steps per epoch")
    add(
        "--drop-path",
        dest="drop_path_rate",
        type=float,
        default=RUN.drop_path_rate,
        help="stochastic depth (default per variant; 0.1 for segmentation)",
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
        help=f"run folder: best.keras, history.csv, curves ({_both(RUN.output, SEGMENTATION_OUTPUT)})",
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
    segmentation = args.task == "segmentation"
    other = CLASSIFICATION_ONLY if segmentation else SEGMENTATION_ONLY
    wrong = [flag for name, flag in other.items() if getattr(args, name, None) is not None]
    if wrong:
        print(
            f"keras-pvt train: error: not an option of --task {args.task}: {', '.join(wrong)}.",
            file=sys.stderr,
        )
        return 2
    try:
        if segmentation:
            result = training.train_segmentation(
                args.variant,
                data=options_from(args, SEG_DATA),
                recipe=options_from(args, SEG_RECIPE),
                run=options_from(args, RunOptions(output=SEGMENTATION_OUTPUT)),
                segmenter=options_from(args, SEGMENTER),
            )
            best, what = result.best_val_mean_iou, "mean IoU"
        else:
            result = training.train(
                args.variant,
                data=options_from(args, DATA),
                recipe=options_from(args, RECIPE),
                run=options_from(args, RUN),
            )
            best, what = result.best_val_accuracy, "accuracy"
    except training.TrainingDivergedError as error:
        print(f"keras-pvt train: error: {error}", file=sys.stderr)
        return 3
    print(
        f"epochs run: {result.epochs_run}; best validation {what}: {'n/a' if best is None else f'{best:.4f}'}"
    )
    print(f"best model: {result.best_model_path}")
    print(f"history:    {result.history_path}")
    if result.curves_path:
        print(f"curves:     {result.curves_path}")
    return 0
