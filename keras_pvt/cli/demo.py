"""`keras-pvt demo`: a short tour (build a model, run it at two sizes, list the variants)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the end-to-end demo")
    parser.add_argument("--output", default="demo_output", help="folder for the demo's files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from keras_pvt import PVTV2B0

    model = PVTV2B0(weights=None)
    print(f"built {model.name}: {model.count_params():,} parameters")
    for size in ((224, 224), (193, 257)):
        images = np.random.default_rng(0).random((1, *size, 3), dtype=np.float32)
        print(f"input {size} -> output {tuple(model(images).shape)}")
    return 0
