"""`compile_inference(model)`'s default engine, side by side with timm -> ONNX -> OpenVINO.

Times, alternating run by run in their own processes (`orchestrate.compare`), B0 and B2 at 224x224,
batch 1 and 16, float32, logits: timm -> ONNX -> OpenVINO; the working tree's default
(`compile_inference(model)`); the default at a git revision (``--baseline``, default 63d6648: its
``compile_inference(model, freeze_weights=True)``, the "backend" engine); and, with ``--engines``,
the working tree's other engines (the candidates of the default rule). Then the first call of the
default on B0 at 224, batch 1, in a fresh process (`compile_inference` and the first call, which
converts or compiles). Writes `default_engine.md` and `.json` under ``--output``.

    .venv/bin/python benchmarks/default_engine.py --rounds 5 --output benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from machine import machine_info, provenance_lines  # noqa: E402
from orchestrate import Contestant, compare, interpreters  # noqa: E402
from report_common import environments, rate  # noqa: E402
from run_all import DEPLOY_THREADS, baseline_tree, make_timm_weights, resolve_revision  # noqa: E402

PARAMS = [{"batch": 1, "size": 224}, {"batch": 16, "size": 224}]
ITERS = {json.dumps(PARAMS[0], sort_keys=True): 10, json.dumps(PARAMS[1], sort_keys=True): 2}
FIRST_CALL = """
import json, sys, time
import numpy as np
from keras_pvt import PVT_V2, compile_inference
model = PVT_V2("b0", classifier_activation=None)
images = np.random.default_rng(0).normal(size=(1, 224, 224, 3)).astype("float32")
start = time.perf_counter()
predict = compile_inference(model)
np.asarray(predict(images))
first = time.perf_counter() - start
start = time.perf_counter()
np.asarray(predict(images))
chosen = getattr(predict, "chosen", {}).get((1, 224, 224, 3), getattr(predict, "engine", "?"))
print(json.dumps({"first_call_s": first, "second_call_s": time.perf_counter() - start, "engine": chosen}))
"""


def contestants(variant: str, weights: dict[str, str], source: Path, engines: list[str]) -> list[Contestant]:
    cache = source / "cache"  # beside the baseline's keras_pvt/, removed with it
    cache.mkdir(exist_ok=True)
    onnx = {"task": "infer", "variant": variant, **weights, "cache": str(cache), "threads": DEPLOY_THREADS}
    ours = {"task": "deploy", "variant": variant, "cache": str(cache), "threads": DEPLOY_THREADS, **weights}
    before = {"task": "infer", "variant": variant, "mode": "frozen", "source": str(source)}
    return [
        Contestant("timm_openvino", "timm_onnx", {**onnx, "engine": "openvino"}),
        Contestant("keras_pvt_default", "keras_pvt_deploy", {**ours, "runtime": "engine", "engine": None}),
        Contestant("keras_pvt_default_before", "keras_pvt", before),
        *(
            Contestant(f"keras_pvt_{name}", "keras_pvt_deploy", {**ours, "runtime": "engine", "engine": name})
            for name in engines
        ),
    ]


def first_call() -> dict[str, Any]:
    """The default's first call on B0, batch 1, 224x224, in a fresh process (conversion included)."""
    done = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if done.returncode == 0 and lines else {"error": done.stderr[-2000:]}


def report(run: dict[str, Any]) -> list[str]:
    labels = [label for label in run["results"]["b0"]["cells"][json.dumps(PARAMS[0], sort_keys=True)]]
    lines = [
        "# compile_inference(model): the default engine next to timm -> ONNX -> OpenVINO",
        "",
        *provenance_lines(run["machine"], run["load_average_after"], environments(run), run["duration_s"]),
        f"Float32 images/s at 224x224, median (min-max) of {run['rounds']} alternating rounds, every row in "
        f"its own process, OpenVINO and LiteRT with {DEPLOY_THREADS} threads. "
        f"`before`: `compile_inference(model, freeze_weights=True)` at {run['baseline']}.",
        "",
        "| row | b0 batch 1 | b0 batch 16 | b2 batch 1 | b2 batch 16 | engine chosen |",
        "|---|---|---|---|---|---|",
    ]
    for label in labels:
        cells, chosen = [], set()
        for variant in ("b0", "b2"):
            for params in PARAMS:
                summary = run["results"][variant]["cells"][json.dumps(params, sort_keys=True)].get(label)
                cells.append(rate(summary))
                chosen.add(str(((summary or {}).get("facts") or {}).get("engine_chosen", "")))
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {', '.join(sorted(chosen - {''})) or '-'} |")
    first = run["first_call"]
    first_s, second_s = first.get("first_call_s", float("nan")), first.get("second_call_s", float("nan"))
    lines += [
        "",
        "First call of `compile_inference(model)` on B0, batch 1, 224x224, in a fresh process "
        f"(compile_inference plus the first call: conversion included): {first_s:.1f} s "
        f"(engine {first.get('engine')}; the second call {1e3 * second_s:.1f} ms).",
        "",
    ]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", default="63d6648")
    parser.add_argument("--engines", default="", help="comma list of other engines to time beside")
    parser.add_argument("--variants", default="b0,b2")
    parser.add_argument("--peers", type=Path, default=Path(os.environ.get("PVT_PEERS", "/tmp/pvt-peers")))
    parser.add_argument("--output", type=Path, default=HERE / "results")
    args = parser.parse_args()
    pythons, machine, started = interpreters(args.peers), machine_info(), time.time()
    engines = [name for name in args.engines.split(",") if name]
    commit = resolve_revision(args.baseline)
    run: dict[str, Any] = {
        "machine": machine,
        "rounds": args.rounds,
        "baseline": args.baseline,
        "results": {},
    }
    args.output.mkdir(parents=True, exist_ok=True)
    with baseline_tree(commit) as source:
        for variant in args.variants.split(","):
            made = make_timm_weights(pythons, variant, source / "weights")
            weights = (
                {"weights": made["weights"], "timm_reference": made["reference"]} if "weights" in made else {}
            )
            print(f"{variant}: default engine vs timm -> ONNX -> OpenVINO", flush=True)
            run["results"][variant] = compare(
                contestants(variant, weights, source, engines),
                PARAMS,
                args.rounds,
                ITERS,
                pythons,
                args.output / "logs",
            )
    run["first_call"] = first_call()
    run["load_average_after"] = os.getloadavg()
    run["duration_s"] = time.time() - started
    (args.output / "default_engine.json").write_text(json.dumps(run, indent=1, default=str) + "\n")
    (args.output / "default_engine.md").write_text("\n".join(report(run)))
    print("\n".join(report(run)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
