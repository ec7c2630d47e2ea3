"""TFLite (LiteRT) latency of the b0 RetinaNet detector at 512x512, batch 1, 1 and 2 threads.

    python benchmarks/detection_tflite.py [--rounds 5] [--invokes 10] [--out benchmarks/results]

`keras_pvt.RetinaNet("b0", num_classes=80)` (COCO's class count; random weights) converted with
`keras_pvt.export.convert_to_tflite` (builtin ops only, fixed shape): the whole detector, NMS
included, in float32 and float16 weights; and the head's raw outputs (`raw_model`, no decoding or
NMS) in float32 and mixed int8, since TensorFlow's int8 calibrator cannot take the NMS loop. With
random weights almost no score passes the 0.05 threshold, so the NMS rows time the network and an
NMS over few boxes; a trained model's NMS sorts more candidates. Timed as `segmentation_tflite.py`
times: every file and thread count in turn within each round. Writes `detection_tflite.json` and
`detection_tflite.md`.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from machine import machine_info  # noqa: E402
from segmentation_tflite import convert, measure, results_provenance, timing_arguments, write_results  # noqa: E402

SIZE = 512
CLASSES = 80
# (file name, whole detector with NMS?, quantization)
FILES = (
    ("detector_float32", True, "float32"),
    ("detector_float16", True, "float16"),
    ("raw_float32", False, "float32"),
    ("raw_int8", False, "int8"),
)


def main(argv: list[str] | None = None) -> int:
    args = timing_arguments(__doc__, argv)

    import numpy as np

    from keras_pvt.detection import RetinaNet, raw_model

    started = time.time()
    machine = machine_info()
    rng = np.random.default_rng(0)
    detector = RetinaNet("b0", num_classes=CLASSES)
    models = {True: detector, False: raw_model(detector)}
    conversions: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pvt-det-tflite-") as folder:
        files = {}
        for name, with_nms, quant in FILES:
            path = Path(folder) / f"{name}.tflite"
            conversions[name] = convert(models[with_nms], SIZE, quant, path, rng)
            print(f"{name}: {conversions[name]}", file=sys.stderr, flush=True)
            if conversions[name]["converted"]:
                files[name] = path
        samples = measure(files, args.rounds, args.invokes, rng)
    model_text = f"RetinaNet b0, {CLASSES} classes, {detector.count_params():,} parameters, {SIZE}x{SIZE}"
    duration = time.time() - started
    write_results(args, "detection_tflite", machine, model_text, conversions, samples, report, duration)
    return 0


def report(results: dict[str, Any]) -> str:
    lines = [
        "# TFLite latency of the RetinaNet detector (b0, batch 1)",
        "",
        *results_provenance(results),
        f"{results['model']}; `keras_pvt.export.convert_to_tflite`, builtin ops only, fixed shape; "
        f"{results['rounds']} rounds x {results['invokes']} invokes, median of round medians "
        '(min-max over rounds). "detector": the whole model, decoding and NMS included (random '
        'weights leave few boxes above the score threshold); "raw": the head\'s outputs only '
        "(int8 calibration cannot take the NMS loop).",
        "",
        "| file | outputs | format | MiB | threads | latency ms (min-max) |",
        "|---|---|---|---|---|---|",
    ]
    for name, facts in results["conversions"].items():
        kind, quant = name.split("_")
        outputs = "detections (NMS)" if kind == "detector" else "raw logits and deltas"
        if not facts["converted"]:
            lines.append(f"| {name} | {outputs} | {quant} | does not convert: {facts['error']} | - | - |")
            continue
        for threads, values in results["latency_ms"][name].items():
            lines.append(
                f"| {name} | {outputs} | {quant} | {facts['size_bytes'] / 2**20:.2f} | {threads} "
                f"| {statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f}) |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
