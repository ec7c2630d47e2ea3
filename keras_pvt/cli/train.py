"""`keras-pvt train`: train or fine-tune a PVT-v2 on a tfds dataset, an image folder, or the
embedded offline dataset, with the paper's recipe, mixed precision and `tf.distribute`.

Exit codes: 0 done; 2 refused (a bad argument, or --output holds a finished run: see --overwrite);
3 the loss became NaN/infinite (the epochs finished before it are kept, resumable)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, TypeVar

from keras_pvt import training
from keras_pvt.training import PRECISIONS, STRATEGIES, DataOptions, Recipe, RunOptions

Options = TypeVar("Options", DataOptions, Recipe, RunOptions)
# Each flag's destination is the name of its `DataOptions` / `Recipe` / `RunOptions` field, and its
# default that field's default.
DATA, RECIPE, RUN = DataOptions(), Recipe(), RunOptions()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train / fine-tune with model.fit (tfds, image folder, or offline dataset)",
        description=__doc__,
    )
    parser.add_argument("--variant", default="b0", help="preset: b0 b1 b2 b2_li b3 b4 b5 (default b0)")
    _data_arguments(parser)
    _recipe_arguments(parser)
    _run_arguments(parser)
    parser.set_defaults(func=run)


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--dataset",
        default=DATA.dataset,
        help="tfds name (tf_flowers, imagenette/160px), folder with train/CLASS/*.jpg, or the "
        f"embedded offline '{DATA.dataset}[/64px]' (default)",
    )
    add("--data-dir", default=DATA.data_dir, help="tensorflow-datasets data folder")
    add("--no-download", dest="download", action="store_false", help="never download; fail if not prepared")
    add(
        "--image-size",
        type=int,
        default=DATA.image_size,
        help=f"training resolution (default {DATA.image_size})",
    )
    add(
        "--batch-size",
        type=int,
        default=DATA.batch_size,
        help=f"global batch size (default {DATA.batch_size})",
    )
    add(
        "--crop-scale",
        type=float,
        nargs=2,
        default=DATA.crop_scale,
        metavar=("MIN", "MAX"),
        help="random-resized-crop area range",
    )
    add("--no-augment", dest="augment", action="store_false", help="no random crop/flip")
    add("--cache", action="store_true", help="cache decoded images in memory")


def _recipe_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--lr",
        dest="base_lr",
        type=float,
        default=RECIPE.base_lr,
        help="learning rate for batch 512, scaled linearly",
    )
    add("--min-lr", type=float, default=RECIPE.min_lr)
    add("--warmup-epochs", type=float, default=RECIPE.warmup_epochs)
    add("--weight-decay", type=float, default=RECIPE.weight_decay, help="AdamW decay (not on norms/biases)")
    add("--label-smoothing", type=float, default=RECIPE.label_smoothing)
    add("--clip-norm", type=float, default=RECIPE.clip_norm, help="clip each gradient to this L2 norm")


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--weights", default=RUN.weights, help="start from 'imagenet', a checkpoint file or a .keras model")
    add("--epochs", type=int, default=RUN.epochs)
    add("--steps-per-epoch", type=int, default=RUN.steps_per_epoch, help="cap steps per epoch")
    add(
        "--drop-path",
        dest="drop_path_rate",
        type=float,
        default=RUN.drop_path_rate,
        help="stochastic depth (default per variant)",
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
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument(
        "--resume",
        dest="resume",
        action="store_true",
        default=RUN.resume,
        help="continue an interrupted run in --output (default)",
    )
    resume.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="discard any interrupted run in --output and start over",
    )
    add(
        "--overwrite",
        action="store_true",
        help="train again in an --output that holds a finished run (only keras-pvt's files there "
        "are replaced); without it such a run is left untouched and the command exits with 2",
    )
    add("--seed", type=int, default=RUN.seed)
    add("--output", default=RUN.output, help="run folder (best.keras, history.csv, curves)")


def options_from(args: argparse.Namespace, kind: type[Options]) -> Options:
    """The `kind` options named by `args`: every field with a flag of that name; the rest default."""
    values: dict[str, Any] = vars(args)
    return kind(**{f.name: values[f.name] for f in dataclasses.fields(kind) if f.name in values})


def run(args: argparse.Namespace) -> int:
    try:
        result = training.train(
            args.variant,
            data=options_from(args, DataOptions),
            recipe=options_from(args, Recipe),
            run=options_from(args, RunOptions),
        )
    except training.TrainingDivergedError as error:
        print(f"keras-pvt train: error: {error}", file=sys.stderr)
        return 3
    best = result.best_val_accuracy
    print(
        f"epochs run: {result.epochs_run}; best validation accuracy: "
        f"{'n/a' if best is None else f'{best:.4f}'}"
    )
    print(f"best model: {result.best_model_path}")
    print(f"history:    {result.history_path}")
    if result.curves_path:
        print(f"curves:     {result.curves_path}")
    return 0
