"""`keras-pvt train`: train or fine-tune a PVT-v2 on a tfds dataset, an image folder, or the
embedded offline dataset, with the paper's recipe, mixed precision and `tf.distribute`.

Exit codes: 0 done; 2 refused (a bad argument, or --output holds a finished run: see --overwrite);
3 the loss became NaN/infinite (the epochs finished before it are kept, resumable)."""

from __future__ import annotations

import argparse
import sys

STRATEGIES = ("auto", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train / fine-tune with model.fit (tfds, image folder, or offline dataset)",
        description=__doc__,
    )
    add = parser.add_argument
    add("--variant", default="b0", help="preset: b0 b1 b2 b2_li b3 b4 b5 (default b0)")
    add("--weights", default=None, help="start from 'imagenet', a checkpoint file or a .keras model")
    add(
        "--dataset",
        default="keras_pvt_shapes",
        help="tfds name (tf_flowers, imagenette/160px), folder with train/CLASS/*.jpg, or the "
        "embedded offline 'keras_pvt_shapes[/64px]' (default)",
    )
    add("--data-dir", default=None, help="tensorflow-datasets data folder")
    add("--no-download", action="store_true", help="never download; fail if not prepared")
    add("--image-size", type=int, default=224, help="training resolution (default 224)")
    add("--epochs", type=int, default=10)
    add("--batch-size", type=int, default=64, help="global batch size (default 64)")
    add("--steps-per-epoch", type=int, default=None, help="cap steps per epoch")
    add("--lr", type=float, default=5e-4, help="learning rate for batch 512, scaled linearly")
    add("--min-lr", type=float, default=1e-5)
    add("--warmup-epochs", type=float, default=5.0)
    add("--weight-decay", type=float, default=0.05, help="AdamW decay (not on norms/biases)")
    add("--label-smoothing", type=float, default=0.1)
    add("--clip-norm", type=float, default=None, help="clip each gradient to this L2 norm")
    add("--drop-path", type=float, default=None, help="stochastic depth (default per variant)")
    add(
        "--crop-scale",
        type=float,
        nargs=2,
        default=(0.35, 1.0),
        metavar=("MIN", "MAX"),
        help="random-resized-crop area range",
    )
    add("--no-augment", action="store_true", help="no random crop/flip")
    add("--cache", action="store_true", help="cache decoded images in memory")
    add("--precision", choices=PRECISIONS, default="float32")
    add("--jit-compile", action="store_true", help="compile steps with XLA")
    add(
        "--strategy",
        choices=STRATEGIES,
        default="auto",
        help="tf.distribute: auto, mirrored (GPUs), multi_worker (TF_CONFIG), tpu",
    )
    add("--tpu", default=None, help="TPU name/address for --strategy tpu ('' = local TPU VM)")
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument(
        "--resume",
        dest="resume",
        action="store_true",
        default=True,
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
    add("--seed", type=int, default=0)
    add("--output", default="runs/pvt_v2", help="run folder (best.keras, history.csv, curves)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from keras_pvt.training import Recipe, TrainingDivergedError, train

    recipe = Recipe(
        base_lr=args.lr,
        min_lr=args.min_lr,
        warmup_epochs=args.warmup_epochs,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        clip_norm=args.clip_norm,
    )
    try:
        result = train(
            args.variant,
            dataset=args.dataset,
            output=args.output,
            weights=args.weights,
            image_size=args.image_size,
            epochs=args.epochs,
            batch_size=args.batch_size,
            recipe=recipe,
            drop_path_rate=args.drop_path,
            precision=args.precision,
            jit_compile=args.jit_compile,
            strategy=args.strategy,
            tpu=args.tpu,
            resume=args.resume,
            overwrite=args.overwrite,
            data_dir=args.data_dir,
            download=not args.no_download,
            augment=not args.no_augment,
            crop_scale=tuple(args.crop_scale),
            cache=args.cache,
            steps_per_epoch=args.steps_per_epoch,
            seed=args.seed,
        )
    except TrainingDivergedError as error:
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
