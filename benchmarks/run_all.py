"""Side-by-side benchmarks of keras-pvt against timm and keras-cv-attention-models (`make bench`).

    python benchmarks/run_all.py [--quick] [--only infer,train,tflite,memory,scaling,bf16]
                                 [--peers /tmp/pvt-peers] [--output benchmarks/results]

Every implementation runs in its own process and virtual environment (the peers come from
`../shared/peers/setup.sh`; missing peers are skipped). Contestants alternate run by run and the
reports give medians, min-max and ratios: see `benchmarks/results/bench.md` (also .json, .png).
Timings on a shared machine drift; the load average before and after is recorded with the results.
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
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the report imports keras_pvt (and TensorFlow)

from machine import machine_info  # noqa: E402
from orchestrate import Contestant, compare, interpreters  # noqa: E402
from report import write_reports  # noqa: E402

GROUPS = ("infer", "train", "tflite", "memory", "scaling", "bf16")


def infer_contestants(variant: str) -> list[Contestant]:
    task = {"task": "infer", "variant": variant}
    return [
        Contestant("keras_pvt", "keras_pvt", {**task, "mode": "compiled"}),
        Contestant("keras_pvt_frozen", "keras_pvt", {**task, "mode": "frozen"}),
        Contestant("keras_pvt_tf_function", "keras_pvt", {**task, "mode": "tf_function"}),
        Contestant("keras_pvt_bf16", "keras_pvt", {**task, "mode": "bf16"}),
        Contestant("timm", "timm", task),
        Contestant("kecam", "kecam", task),
    ]


def run_groups(args: argparse.Namespace, pythons: dict[str, Path], cache: Path) -> dict[str, Any]:
    quick, logs = args.quick, args.output / "logs"
    rounds = 2 if quick else args.rounds
    results: dict[str, Any] = {}
    if "infer" in args.only:
        for variant in ("b0", "b2"):
            print(f"inference {variant}", flush=True)
            params = [{"batch": 1, "size": 224}, {"batch": 16, "size": 224}]
            iters = {
                json.dumps(params[0], sort_keys=True): 2 if quick else 8,
                json.dumps(params[1], sort_keys=True): 1 if quick else 2,
            }
            results[f"infer_{variant}"] = compare(
                infer_contestants(variant), params, rounds, iters, pythons, logs
            )
    if "train" in args.only:
        print("training step b0", flush=True)
        task = {"task": "train", "variant": "b0"}
        contestants = [Contestant(i, i, task) for i in ("keras_pvt", "timm", "kecam")]
        results["train_b0"] = compare(
            contestants, [{"batch": args.train_batch, "size": 224}], rounds, 1 if quick else 2, pythons, logs
        )
    if "tflite" in args.only:
        print("TFLite b0 (batch 1)", flush=True)
        contestants = [
            Contestant(
                f"{impl}_{quant}",
                impl,
                {"task": "tflite", "variant": "b0", "quant": quant, "cache": str(cache)},
            )
            for quant in ("float32", "int8")
            for impl in ("keras_pvt", "kecam")
        ]
        results["tflite_b0"] = compare(
            contestants, [{"threads": 1}, {"threads": 2}], rounds, 3 if quick else 10, pythons, logs
        )
    if "memory" in args.only:
        print("peak memory, b0 inference at batch 16 (one fresh process each)", flush=True)
        memory: dict[str, Any] = {}
        for contestant in infer_contestants("b0"):
            memory[contestant.label] = compare(
                [contestant], [{"batch": 16, "size": 224}], 1, 2, pythons, logs
            )["workers"]
        results["memory_b0"] = memory
    if "scaling" in args.only:
        print("resolution scaling, b2 vs b2_li (batch 1)", flush=True)
        sizes = [224, 320] if quick else [224, 384, 512, 768, 1024]
        contestants = [
            Contestant(f"keras_pvt_{v}", "keras_pvt", {"task": "infer", "variant": v, "mode": "compiled"})
            for v in ("b2", "b2_li")
        ]
        params = [{"batch": 1, "size": s} for s in sizes]
        iters = {json.dumps(p, sort_keys=True): (1 if quick or p["size"] >= 768 else 3) for p in params}
        results["scaling"] = compare(contestants, params, 2 if quick else 3, iters, pythons, logs)
        results["scaling"]["sizes"] = sizes
    if "bf16" in args.only:
        print("bfloat16 accuracy cost (random weights)", flush=True)
        command = [sys.executable, str(HERE / "bf16_accuracy.py"), "--images", "8" if quick else "16"]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        lines = done.stdout.strip().splitlines()
        results["bf16_accuracy"] = (
            json.loads(lines[-1]) if done.returncode == 0 and lines else {"error": done.stderr[-2000:]}
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (noisy numbers)")
    parser.add_argument("--only", default=",".join(GROUPS), help=f"comma list of {GROUPS}")
    parser.add_argument("--peers", type=Path, default=Path(os.environ.get("PVT_PEERS", "/tmp/pvt-peers")))
    parser.add_argument("--output", type=Path, default=HERE / "results")
    parser.add_argument("--rounds", type=int, default=7, help="alternation rounds per measurement")
    parser.add_argument("--train-batch", type=int, default=16)
    args = parser.parse_args(argv)
    args.only = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = sorted(set(args.only) - set(GROUPS))
    if unknown:
        parser.error(f"unknown group(s) {unknown}; choose from {GROUPS}")
    pythons = interpreters(args.peers)
    missing = sorted({"timm", "kecam"} - set(pythons))
    if missing:
        print(
            f"peers not found under {args.peers}: {missing} (build them with "
            f"../shared/peers/setup.sh); comparing without them",
            flush=True,
        )
    args.output.mkdir(parents=True, exist_ok=True)
    started = time.time()
    run = {
        "machine": machine_info(),
        "quick": args.quick,
        "groups": args.only,
        "interpreters": {k: str(v) for k, v in pythons.items()},
    }
    with tempfile.TemporaryDirectory(prefix="pvt-bench-") as cache:
        run["results"] = run_groups(args, pythons, Path(cache))
    run["load_average_after"] = os.getloadavg()
    run["duration_s"] = time.time() - started
    paths = write_reports(run, args.output)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
