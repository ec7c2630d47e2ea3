"""Accuracy cost of `compile_inference(model, precision="bfloat16")` against float32.

    python benchmarks/bf16_accuracy.py [--variants b0,b2] [--images 16]

Random weights and random normalised images (nothing is downloaded): prints one JSON object with,
per variant, the relative error of the logits (norm of the difference over the norm of the float32
logits), the largest absolute difference, and how often the top-1 class agrees.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="b0,b2")
    parser.add_argument("--images", type=int, default=16)
    args = parser.parse_args()
    import keras
    import numpy as np

    from keras_pvt import PVT_V2
    from keras_pvt.inference import compile_inference

    keras.utils.set_random_seed(0)
    images = np.random.default_rng(0).normal(size=(args.images, 224, 224, 3)).astype("float32")
    out = {}
    for variant in args.variants.split(","):
        model = PVT_V2(variant, classifier_activation=None)
        chunks = [images[i : i + 4] for i in range(0, len(images), 4)]
        float32, bfloat16 = compile_inference(model), compile_inference(model, "bfloat16")
        exact = np.concatenate([float32(chunk).numpy() for chunk in chunks])
        bf16 = np.concatenate([bfloat16(chunk).numpy() for chunk in chunks])
        out[variant] = {
            "images": len(images),
            "logits_relative_error": float(np.linalg.norm(bf16 - exact) / np.linalg.norm(exact)),
            "logits_max_abs_diff": float(np.abs(bf16 - exact).max()),
            "logits_max_abs": float(np.abs(exact).max()),
            "top1_agreement": float((bf16.argmax(-1) == exact.argmax(-1)).mean()),
        }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
