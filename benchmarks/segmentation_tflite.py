"""TFLite (LiteRT) latency of the b0 Semantic FPN segmenter at 256x256 and 512x512, 1 and 2 threads.

    python benchmarks/segmentation_tflite.py [--rounds 5] [--invokes 10] [--out benchmarks/results]

`keras_pvt.SemanticFPN("b0", num_classes=150)` (the paper's ADE20K model; random weights, which do
not change the time) is converted with the product's own `keras_pvt.export.convert_to_tflite`
(builtin ops only, batch 1, fixed size so XNNPACK may take the whole graph) to float32 and, if it
converts, full int8 (calibrated on 8 random images; verification off, this is a timing run). Every
file and thread count is timed in turn within each round, so drift on the machine spreads over all
of them; the report gives the median of the round medians and the min-max over rounds, with the
load average before and after (other processes on the machine slow every number alike).
Writes `segmentation_tflite.json` and `segmentation_tflite.md`; `run_all.py --only segmentation`
runs it too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from litert_timing import ready_interpreter, round_medians  # noqa: E402
from machine import environment_name, installed_versions, machine_info, provenance_lines  # noqa: E402

SIZES = (256, 512)
THREADS = (1, 2)
QUANTS = ("float32", "int8")
CLASSES = 150
LIBRARIES = ("keras-pvt", "keras", "tensorflow", "ai-edge-litert", "numpy")  # versions recorded
CALIBRATION_IMAGES = 8


def convert(model: Any, size: int, quant: str, path: Path, rng: Any) -> dict[str, Any]:
    """Write `model` as a batch-1 `size`x`size` TFLite file; the conversion's facts, or its error."""
    from keras_pvt.export import ExportError, convert_to_tflite

    calibration = None
    if quant == "int8":
        calibration = rng.normal(size=(CALIBRATION_IMAGES, size, size, 3)).astype("float32")
    start = time.perf_counter()
    try:
        convert_to_tflite(
            model,
            path,
            quantize="none" if quant == "float32" else quant,
            representative_data=calibration,
            num_calibration=CALIBRATION_IMAGES,
            image_size=size,
            batch_size=1,
            verify=False,
        )
    except ExportError as error:
        return {"converted": False, "error": str(error).splitlines()[0][:300]}
    return {
        "converted": True,
        "size_bytes": path.stat().st_size,
        "conversion_s": round(time.perf_counter() - start, 1),
    }


def measure(files: dict[str, Path], rounds: int, invokes: int, rng: Any) -> dict[str, dict[str, list[float]]]:
    """Round medians (ms) per file and thread count, every combination timed once per round."""
    interpreters = {
        (name, threads): ready_interpreter(path, threads, rng, warmup=2)
        for name, path in files.items()
        for threads in THREADS
    }
    medians = round_medians(interpreters, rounds, invokes)
    return {name: {str(t): medians[name, t] for t in THREADS} for name in files}


def main(argv: list[str] | None = None) -> int:
    args = timing_arguments(__doc__, argv)

    import numpy as np

    from keras_pvt import SemanticFPN

    machine = machine_info()
    rng = np.random.default_rng(0)
    model = SemanticFPN("b0", num_classes=CLASSES)
    conversions: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pvt-seg-tflite-") as folder:
        files = {}
        for size in SIZES:
            for quant in QUANTS:
                name = f"{size}_{quant}"
                path = Path(folder) / f"{name}.tflite"
                conversions[name] = convert(model, size, quant, path, rng)
                print(f"{name}: {conversions[name]}", file=sys.stderr, flush=True)
                if conversions[name]["converted"]:
                    files[name] = path
        samples = measure(files, args.rounds, args.invokes, rng)
    model_text = f"SemanticFPN b0, {CLASSES} classes, {model.count_params():,} parameters"
    write_results(args, "segmentation_tflite", machine, model_text, conversions, samples, report)
    return 0


def timing_arguments(doc: str, argv: list[str] | None) -> argparse.Namespace:
    """The arguments every stand-alone TFLite timing script takes: rounds, invokes, output folder."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--invokes", type=int, default=10, help="timed invokes per file, thread count and round"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    return parser.parse_args(argv)


def write_results(
    args: argparse.Namespace,
    stem: str,
    machine: dict[str, Any],
    model_text: str,
    conversions: dict[str, Any],
    samples: dict[str, Any],
    report: Callable[[dict[str, Any]], str],
    duration_s: float | None = None,
) -> None:
    """`stem`.json and `stem`.md under ``args.out``: the run's facts and `report` of them, printed too."""
    results = {
        "machine": machine,
        "load_average_after": os.getloadavg(),
        **({} if duration_s is None else {"duration_s": duration_s}),
        "versions": {environment_name(): installed_versions(LIBRARIES)},
        "model": model_text,
        "rounds": args.rounds,
        "invokes": args.invokes,
        "conversions": conversions,
        "latency_ms": samples,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / f"{stem}.md").write_text(report(results))
    print(report(results))


def results_provenance(results: dict[str, Any]) -> list[str]:
    """`provenance_lines` of a results dict `write_results` wrote."""
    return provenance_lines(
        results["machine"],
        results.get("load_average_after"),
        results.get("versions", {}),
        results.get("duration_s"),
    )


def report(results: dict[str, Any]) -> str:
    lines = [
        "# TFLite latency of the Semantic FPN segmenter (b0, batch 1)",
        "",
        *results_provenance(results),
        f"{results['model']}; `keras_pvt.export.convert_to_tflite`, builtin ops only, fixed shape; "
        f"{results['rounds']} rounds x {results['invokes']} invokes, median of round medians "
        "(min-max over rounds).",
        "",
        "| size | format | file | threads | latency ms (min-max) |",
        "|---|---|---|---|---|",
    ]
    for name, facts in results["conversions"].items():
        size, quant = name.split("_")
        if not facts["converted"]:
            lines.append(f"| {size}x{size} | {quant} | does not convert: {facts['error']} | - | - |")
            continue
        for threads, values in results["latency_ms"][name].items():
            lines.append(
                f"| {size}x{size} | {quant} | {facts['size_bytes'] / 2**20:.2f} MiB | {threads} "
                f"| {statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f}) |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
