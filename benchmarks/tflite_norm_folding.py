"""Float32 .tflite with and without `keras_pvt.rewrites.TFLITE_FLOAT` (block LayerNorm affines and the
query scale folded into their readers), B0 and B2 at 224x224, batch 1, 1 and 2 threads.

    python benchmarks/tflite_norm_folding.py [--rounds 9] [--invokes 20] [--out benchmarks/results]

Both files come from `keras_pvt.export.convert_to_tflite` on the same model (random weights, the
norms' gamma and beta drawn away from 1 and 0 so that folding changes numbers); "plain" is traced
with the rewrite switched off. Each file is verified against the Keras model (relative error of
the logits, the float32 bound 1e-4); b0 also in mixed int8 (the plain model, as the int8 modes
convert it), for its ratio to the float32 file. All files and thread counts run in turn in every round, in one
process; the figure is the median of the round medians. Writes `tflite_norm_folding.json` / `.md`.
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

from litert_timing import ready_interpreter, round_medians  # noqa: E402
from machine import machine_info  # noqa: E402
from segmentation_tflite import results_provenance, timing_arguments, write_results  # noqa: E402

VARIANTS = ("b0", "b2")
THREADS = (1, 2)
FORMS = ("plain", "folded")
SIZE = 224
INT8_VARIANTS = ("b0",)  # mixed int8 beside the float files: its ratio to float32 (issue 26's 0.6x)


def perturbed_model(variant: str, rng: Any) -> Any:
    """`PVT_V2(variant)` with every LayerNorm's gamma ~ N(1, 0.2) and beta ~ N(0, 0.2)."""
    from keras_pvt import PVT_V2
    from keras_pvt.layers.norm import LayerNorm

    model = PVT_V2(variant, classifier_activation=None)
    for layer in model._flatten_layers():
        if isinstance(layer, LayerNorm):
            layer.gamma.assign(rng.normal(1.0, 0.2, layer.gamma.shape).astype("float32"))
            layer.beta.assign(rng.normal(0.0, 0.2, layer.beta.shape).astype("float32"))
    return model


def convert(model: Any, form: str, path: Path, images: Any) -> dict[str, Any]:
    """Write `model` as a batch-1 file: float32 folded or plain, or mixed int8 (the plain model,
    calibrated on `images`); verified, with its facts."""
    import keras_pvt.export.tflite as tflite
    from keras_pvt.export import convert_to_tflite

    chosen = tflite.tflite_kernel_table
    if form == "plain":
        tflite.tflite_kernel_table = lambda quantize: None
    try:
        start = time.perf_counter()
        options: dict[str, Any] = {"image_size": SIZE, "batch_size": 1, "verify_images": images}
        if form == "int8":
            options |= {"quantize": "int8", "representative_data": images, "num_calibration": len(images)}
        result = convert_to_tflite(model, path, **options)
    finally:
        tflite.tflite_kernel_table = chosen
    report = result.verification
    return {
        "size_bytes": path.stat().st_size,
        "conversion_s": round(time.perf_counter() - start, 1),
        "ops": sum(report.op_histogram.values()),
        "relative_error": report.relative_error_overall,
        "status": report.status,
    }


def main(argv: list[str] | None = None) -> int:
    args = timing_arguments(__doc__, argv)

    import numpy as np

    started = time.time()
    machine = machine_info()
    rng = np.random.default_rng(0)
    images = rng.normal(size=(8, SIZE, SIZE, 3)).astype("float32")
    conversions: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pvt-fold-") as folder:
        files = {}
        for variant in VARIANTS:
            model = perturbed_model(variant, rng)
            for form in FORMS + (("int8",) if variant in INT8_VARIANTS else ()):
                name = f"{variant}_{form}"
                files[name] = Path(folder) / f"{name}.tflite"
                conversions[name] = convert(model, form, files[name], images)
                print(f"{name}: {conversions[name]}", file=sys.stderr, flush=True)
        interpreters = {
            (name, threads): ready_interpreter(path, threads, rng, warmup=3)
            for name, path in files.items()
            for threads in THREADS
        }
        medians = round_medians(interpreters, args.rounds, args.invokes)
    samples = {name: {str(t): medians[name, t] for t in THREADS} for name in files}
    text = f"PVT_V2 b0 and b2 at {SIZE}x{SIZE}, random weights, norms perturbed"
    write_results(
        args, "tflite_norm_folding", machine, text, conversions, samples, report, time.time() - started
    )
    return 0


def report(results: dict[str, Any]) -> str:
    lines = [
        "# Float32 .tflite: block LayerNorm affines folded into their readers (batch 1)",
        "",
        *results_provenance(results),
        f"{results['model']}; `keras_pvt.export.convert_to_tflite`, fixed shape, each file verified "
        f"against the Keras model; {results['rounds']} rounds x {results['invokes']} invokes, every "
        "file and thread count in turn per round, median of round medians (min-max over rounds).",
        "",
        "| variant | threads | plain ms (min-max) | folded ms (min-max) | folded / plain |",
        "|---|---|---|---|---|",
    ]
    latency = results["latency_ms"]
    for variant in VARIANTS:
        for threads in map(str, THREADS):
            plain, folded = latency[f"{variant}_plain"][threads], latency[f"{variant}_folded"][threads]
            ratio = statistics.median(folded) / statistics.median(plain)
            lines.append(f"| {variant} | {threads} | {_cell(plain)} | {_cell(folded)} | {ratio:.3f} |")
    for variant in INT8_VARIANTS:
        for threads in map(str, THREADS):
            int8, folded = latency[f"{variant}_int8"][threads], latency[f"{variant}_folded"][threads]
            ratio = statistics.median(int8) / statistics.median(folded)
            lines.append(
                f"| {variant} mixed int8 | {threads} | - | int8 {_cell(int8)} | {ratio:.3f} (int8 / folded) |"
            )
    lines += ["", "| file | ops | size | relative error vs Keras | verification |", "|---|---|---|---|---|"]
    for name, facts in results["conversions"].items():
        lines.append(
            f"| {name} | {facts['ops']} | {facts['size_bytes'] / 2**20:.2f} MiB "
            f"| {facts['relative_error']:.2g} | {facts['status']} |"
        )
    return "\n".join(lines) + "\n"


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


if __name__ == "__main__":
    sys.exit(main())
