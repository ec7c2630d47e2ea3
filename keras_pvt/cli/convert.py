"""`keras-pvt convert`: a PyTorch PVT-v2 checkpoint -> Keras `.weights.h5` or `.keras` file.

The file is written beside the output and renamed into place; an existing output is replaced only
if it is a previous file of the same kind and `--overwrite` is given.
"""

from __future__ import annotations

import argparse
import json

from keras_pvt._safe_write import KERAS_MODEL, KERAS_WEIGHTS, atomic_write, check_output
from keras_pvt.checkpoints import detect_scheme, read_state_dict
from keras_pvt.checkpoints.build import from_checkpoint


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a PyTorch PVT-v2 checkpoint (official, timm or HF naming) to Keras",
        description=(
            "Read CHECKPOINT (.safetensors, .pth/.pt/.bin, .npz; no torch needed), detect its naming "
            "scheme and architecture, and write Keras weights (.weights.h5) or a whole model "
            "(.keras)."
        ),
    )
    parser.add_argument("checkpoint", help="checkpoint file to convert")
    parser.add_argument("--output", "-o", required=True, help="output file: NAME.weights.h5 or NAME.keras")
    parser.add_argument("--variant", help="preset of the checkpoint (b0 ... b5, b2_li); default: inferred")
    parser.add_argument(
        "--config",
        help="JSON file with a PVTV2Config dict, for architectures that are not presets",
    )
    parser.add_argument("--no-top", action="store_true", help="drop the classifier (backbone only)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous .keras/.weights.h5 file at --output (nothing else is ever replaced)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    output = str(args.output)
    if not output.endswith((".weights.h5", ".keras")):
        raise ValueError(
            f"--output {output!r} must end with .weights.h5 (weights only) or .keras (weights and "
            "architecture)."
        )
    if args.variant and args.config:
        raise ValueError("Give --variant or --config, not both.")
    kind = KERAS_MODEL if output.endswith(".keras") else KERAS_WEIGHTS
    inputs = (args.checkpoint, args.config)
    check_output(output, kind, overwrite=args.overwrite, inputs=inputs)  # before any work
    config = None
    if args.config:
        with open(args.config, encoding="utf-8") as handle:
            config = json.load(handle)
    state = read_state_dict(args.checkpoint)
    scheme, _ = detect_scheme(state)
    model = from_checkpoint(state, variant=args.variant, config=config, include_top=not args.no_top)
    save = model.save if kind is KERAS_MODEL else model.save_weights
    atomic_write(output, lambda path: save(str(path)), kind, overwrite=args.overwrite, inputs=inputs)
    print(
        f"converted {args.checkpoint} ({scheme} naming, {len(state)} tensors) -> {output}: "
        f"{model.name}, {model.count_params():,} parameters"
    )
    return 0
