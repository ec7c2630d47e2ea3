"""Detection-level verification of exported detectors: what healthy and broken files measure.

    python benchmarks/detection_verification.py [--run DEMO_OUTPUT] [--images 32] [--out benchmarks/results]

A trained detector is needed (an untrained one detects nothing): `--run` names the output folder of
`keras-pvt demo --task detection` (its `run/best.keras` and `tensorflow_datasets/`); without it the
demo runs first, in a temporary folder (about 3 minutes on 2 cores). On the held-out test images,
the detector is converted to TFLite with its NMS (float32, float16) and verified; then files made
from copies whose one head convolution kernel is scaled by 1.01 or 1.05 are verified against the
unchanged detector, as files with slightly wrong weights. Writes `detection_verification.json`
and `.md`: status, detection agreement, near ties, relative errors and AP against the Keras
detections of each file, beside the bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from machine import environment_name, installed_versions, machine_info, provenance_lines  # noqa: E402

LIBRARIES = ("tensorflow", "keras", "ai-edge-litert", "pycocotools")

# (row name, quantization, layer whose kernel is scaled, scale)
CASES = (
    ("float32", "none", None, 1.0),
    ("float16", "float16", None, 1.0),
    ("box conv x1.01", "none", "head_reg_conv1", 1.01),
    ("box conv x1.05", "none", "head_reg_conv1", 1.05),
    ("class conv x1.05", "none", "head_cls_conv1", 1.05),
)


def demo_run(folder: str) -> None:
    """`keras-pvt demo --task detection` into `folder` with its defaults."""
    command = [sys.executable, "-m", "keras_pvt", "demo", "--task", "detection", "--output", folder]
    subprocess.run(command, check=True)


def held_out_images(run: str, size: int, count: int) -> Any:
    """The first `count` test-split images of the demo's dataset, model-ready."""
    import numpy as np

    from keras_pvt.data import make_detection_pipelines

    pipes = make_detection_pipelines(
        "keras_pvt_det_shapes",
        image_size=size,
        batch_size=16,
        data_dir=os.path.join(run, "tensorflow_datasets"),
        retinanet_targets=False,
    )
    batches = [images for images, _ in pipes.val.as_numpy_iterator()]
    return np.concatenate(batches)[:count]


def measure(run: str, count: int, folder: str) -> list[dict[str, Any]]:
    """One row per case: the verification report's figures."""
    import keras

    from keras_pvt.export import convert_to_tflite
    from keras_pvt.export.verify import verify_tflite

    model_path = os.path.join(run, "run", "best.keras")
    detector = keras.models.load_model(model_path)
    size = int(detector.inputs[0].shape[1] or 128)
    images = held_out_images(run, size, count)
    rows = []
    for name, quantize, layer_name, scale in CASES:
        made_from = detector
        if layer_name is not None:
            made_from = keras.models.load_model(model_path)
            layer = made_from.get_layer(layer_name)
            weights = layer.get_weights()
            weights[0] *= scale
            layer.set_weights(weights)
        path = os.path.join(folder, f"{name.replace(' ', '_')}.tflite")
        convert_to_tflite(made_from, path, quantize=quantize, image_size=size, batch_size=1, verify=False)
        report = verify_tflite(path, detector, images, quantize=quantize)
        found = report.detections
        rows.append(
            {
                "file": name,
                "status": report.status,
                "agreement": found.agreement,
                "required": report.min_detection_agreement,
                "matched": found.matched,
                "keras_detections": found.keras_detections,
                "export_detections": found.export_detections,
                "near_ties": found.near_ties,
                "relative_error": report.relative_error,
                "bound": report.max_relative_error,
                "ap_vs_keras": found.ap_vs_keras,
                "images": len(images),
            }
        )
        print(rows[-1], flush=True)
    return rows


def markdown(rows: list[dict[str, Any]], machine: dict[str, Any], run: str, seconds: float) -> str:
    versions = {environment_name(): installed_versions(LIBRARIES)}
    lines = [
        "# Detection-level verification of exported detectors",
        "",
        f"`benchmarks/detection_verification.py`: the demo's trained detector (`{run}`), "
        f"{rows[0]['images']} held-out test images, TFLite with NMS; the broken files are made from "
        "copies with one head convolution kernel scaled, verified against the unchanged detector.",
        "",
        *provenance_lines(machine, os.getloadavg(), versions, seconds),
        "| file | status | detection agreement (required) | matched / Keras / export | near ties "
        "| rel. error boxes / scores (bound) | AP vs Keras |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        error = row["relative_error"]
        ap = "-" if row["ap_vs_keras"] is None else f"{100 * row['ap_vs_keras']:.2f}"
        agreement = f"{100 * row['agreement']:.2f}% ({100 * row['required']:.0f}%)"
        counts = f"{row['matched']} / {row['keras_detections']} / {row['export_detections']}"
        errors = f"{error['boxes']:.2g} / {error['confidence']:.2g} ({row['bound']:.0e})"
        cells = (row["file"], row["status"], agreement, counts, str(row["near_ties"]), errors, ap)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a `keras-pvt demo --task detection` output folder")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args(argv)
    started = time.time()
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="pvt-det-verify-") as folder:
        run = args.run or os.path.join(folder, "demo")
        if args.run is None:
            demo_run(run)
        rows = measure(run, args.images, folder)
    seconds = time.time() - started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shown_run = args.run or "a fresh demo run"
    (out / "detection_verification.json").write_text(
        json.dumps({"machine": machine, "rows": rows, "seconds": seconds}, indent=2) + "\n"
    )
    (out / "detection_verification.md").write_text(markdown(rows, machine, shown_run, seconds))
    print((out / "detection_verification.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
