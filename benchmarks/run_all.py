"""Side-by-side benchmarks of keras-pvt against its peers (`make bench`): timm, keras-cv-attention-models
(kecam), zeromodels and timm converted by litert-torch.

    python benchmarks/run_all.py [--quick] [--only infer,deploy,train,tflite,memory,scaling,bf16,...]
                                 [--rounds N] [--baseline REV] [--peers /tmp/pvt-peers]
                                 [--output benchmarks/results]

Every implementation runs in its own process and virtual environment (the peers come from
`../shared/peers/setup.sh`; missing peers are skipped). "deploy" sets every CPU deployment of
PVT-v2 side by side (timm eager, timm -> ONNX -> ONNX Runtime / OpenVINO, kecam and zeromodels on
TensorFlow, the float32 .tflite files of kecam, zeromodels and timm -> litert-torch on LiteRT, and
ours on each `compile_inference` engine, on LiteRT and on OpenVINO), with the machine's float32
peak measured by `roofline.py` before and after. "tflite" sets the .tflite files side by side at
batch 1 and 1 or 2 threads (ours, kecam, zeromodels, timm -> litert-torch), and our int8 files.
Everything built from timm and ours run timm's random-init weights (`timm_weights.py`), so ours is
compared with timm as well as each file with its own framework's model. Contestants alternate run
by run and the reports give medians, min-max and ratios: see `benchmarks/results/bench.md` (also
.json, .png). Timings on a shared machine drift; the load average before and after is recorded with
the results, with the CPU's SIMD features and every environment's library versions.

`--baseline REV` adds keras-pvt at git revision REV (unpacked with `git archive` into a temporary
folder, run with the same interpreter) as a twin of every keras-pvt contestant, labelled `@base`
and run next to it in every round; the report's "Before and after" table gives the ratios.

Measured figures live in `benchmarks/results/` (the reports, and `NOTES.md` for what limits them),
never in docstrings or comments, here or in the package.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the report imports keras_pvt (and TensorFlow)

from machine import machine_info  # noqa: E402
from orchestrate import PEER_VENVS, Contestant, compare, interpreters  # noqa: E402
from report import BASELINE_SUFFIX, write_reports  # noqa: E402

GROUPS = ("infer", "deploy", "train", "tflite", "memory", "scaling", "bf16", "segmentation", "backends")
REPO = HERE.parent
# `compile_inference` engines timed by the "deploy" group: "default" is `compile_inference(model)`
# with no other argument; the others name `engine=` ("measure" is left out: it times every engine
# on each new shape).
ENGINES = ("default", "xla", "litert", "openvino")
DEPLOY_THREADS = 2  # intra-op threads of ONNX Runtime, OpenVINO and LiteRT (this machine's CPUs)
# Alternation rounds per group when --rounds is not given: a full "deploy" + "tflite" run stays
# within about 25 minutes on a quiet 2-core machine.
DEFAULT_ROUNDS = {"deploy": 3, "tflite": 5}
OTHER_ROUNDS = 7
QUICK_ROUNDS = 2


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


def has_bfloat16_arithmetic(machine: dict[str, Any]) -> bool:
    """Whether the CPU computes in bfloat16 (AVX512-BF16 or AMX); elsewhere OpenVINO's bf16 hint
    runs float32 and its rows would repeat the float32 ones."""
    return bool({"avx512_bf16", "amx_bf16"} & set(machine.get("cpu_flags", ())))


def deploy_contestants(
    variant: str, cache: Path, shared: dict[str, str], bfloat16: bool = True
) -> list[Contestant]:
    """Every CPU deployment of `variant`: the peers, then ours (labels starting "keras_pvt_").

    `shared`: timm's weights and reference outputs (`timm_weights.py`), given to every contestant
    built from timm and to ours; `bfloat16`: whether to add the OpenVINO bf16-hint rows."""
    infer = {"task": "infer", "variant": variant}
    timm = {**infer, **shared}
    onnx = {**timm, "cache": str(cache), "threads": DEPLOY_THREADS}
    ours = {"task": "deploy", "variant": variant, "cache": str(cache), "threads": DEPLOY_THREADS, **shared}
    # The .tflite files are the "tflite" group's too: same weights (timm's, or saved beside the file).
    files = {
        "task": "tflite",
        "variant": variant,
        "quant": "float32",
        "threads": DEPLOY_THREADS,
        "cache": str(cache),
    }
    bf16 = [
        Contestant("timm_openvino_bf16", "timm_onnx", {**onnx, "engine": "openvino", "precision": "bf16"}),
        Contestant(
            "keras_pvt_openvino_ir_bf16",
            "keras_pvt_deploy",
            {**ours, "runtime": "openvino_ir", "precision": "bf16"},
        ),
    ]
    return [
        Contestant("timm", "timm", timm),
        Contestant("timm_onnxruntime", "timm_onnx", {**onnx, "engine": "onnxruntime"}),
        Contestant("timm_openvino", "timm_onnx", {**onnx, "engine": "openvino"}),
        *(bf16[:1] if bfloat16 else []),
        Contestant("kecam", "kecam", infer),
        Contestant("zeromodels", "zeromodels", infer),
        Contestant("kecam_tflite", "kecam", files),
        Contestant("zeromodels_tflite", "zeromodels", files),
        Contestant("timm_litert_torch", "litert_torch", {**files, **shared}),
        *(
            Contestant(
                f"keras_pvt_{engine}", "keras_pvt_deploy", {**ours, "runtime": "engine", "engine": engine}
            )
            for engine in ENGINES
        ),
        Contestant("keras_pvt_tflite", "keras_pvt_deploy", {**ours, "runtime": "tflite"}),
        Contestant("keras_pvt_openvino_ir", "keras_pvt_deploy", {**ours, "runtime": "openvino_ir"}),
        *(bf16[1:] if bfloat16 else []),
    ]


def with_baseline(contestants: list[Contestant], source: Path | None) -> list[Contestant]:
    """`contestants`, each keras-pvt one followed by its twin importing keras_pvt from `source`."""
    out = []
    for contestant in contestants:
        out.append(contestant)
        if source is not None and contestant.impl == "keras_pvt":
            task = {**contestant.task, "source": str(source)}
            out.append(Contestant(contestant.label + BASELINE_SUFFIX, "keras_pvt", task))
    return out


def resolve_revision(revision: str) -> str:
    """The full commit hash of `revision` in this repository; ValueError if git does not know it."""
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ValueError(f"--baseline {revision!r} is not a commit of {REPO}")
    return done.stdout.strip()


@contextlib.contextmanager
def baseline_tree(commit: str) -> Iterator[Path]:
    """A temporary folder holding `keras_pvt/` as of `commit` (the repository is only read)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit, "keras_pvt"],
        capture_output=True,
        check=True,
    ).stdout
    with tempfile.TemporaryDirectory(prefix="pvt-baseline-") as folder:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        yield Path(folder)


@dataclass
class Bench:
    """What every group needs: the arguments, the interpreters, the TFLite cache, the baseline tree,
    the machine, and timm's shared weights per variant (made on first use)."""

    args: argparse.Namespace
    pythons: dict[str, Path]
    cache: Path
    source: Path | None  # keras_pvt at --baseline REV, or None
    machine: dict[str, Any] = field(default_factory=dict)
    timm_files: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def quick(self) -> bool:
        return self.args.quick

    @property
    def rounds(self) -> int:
        return self.rounds_of("")

    def rounds_of(self, group: str) -> int:
        """Alternation rounds for `group`: --quick's, else --rounds, else the group's default."""
        if self.args.quick:
            return QUICK_ROUNDS
        return self.args.rounds or DEFAULT_ROUNDS.get(group, OTHER_ROUNDS)

    @property
    def logs(self) -> Path:
        return self.args.output / "logs"

    def shared_weights(self, variant: str) -> dict[str, str]:
        """Task keys "weights" and "timm_reference" for `variant` (`timm_weights.py`, run once in
        the timm or lt venv); {} where neither venv exists or the script failed (then every
        contestant uses its own random weights and the report says ours was not compared with timm)."""
        if variant not in self.timm_files:
            self.timm_files[variant] = make_timm_weights(self.pythons, variant, self.cache / "weights")
        made = self.timm_files[variant]
        return {"weights": made["weights"], "timm_reference": made["reference"]} if "weights" in made else {}

    def compare(self, contestants: list[Contestant], params: list[dict[str, Any]], rounds: int, iters: Any):
        """`orchestrate.compare` with the baseline twins added."""
        everyone = with_baseline(contestants, self.source)
        return compare(everyone, params, rounds, iters, self.pythons, self.logs)


def make_timm_weights(pythons: dict[str, Path], variant: str, folder: Path) -> dict[str, Any]:
    """Run `timm_weights.py` for `variant` in the timm venv (else the lt venv): its JSON line, or
    {"error": why}."""
    python = pythons.get("timm") or pythons.get("litert_torch")
    if python is None:
        return {"error": "neither the timm nor the lt peer venv is installed"}
    command = [str(python), str(HERE / "timm_weights.py"), "--variant", variant, "--out", str(folder)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        print(f"  timm weights for {variant} failed: {done.stderr[-500:]}", flush=True)
        return {"error": done.stderr[-2000:]}
    return {**json.loads(lines[-1]), "python": str(python)}


def bench_infer(bench: Bench, results: dict[str, Any]) -> None:
    for variant in ("b0", "b2"):
        print(f"inference {variant}", flush=True)
        params = [{"batch": 1, "size": 224}, {"batch": 16, "size": 224}]
        iters = {
            json.dumps(params[0], sort_keys=True): 2 if bench.quick else 8,
            json.dumps(params[1], sort_keys=True): 1 if bench.quick else 2,
        }
        results[f"infer_{variant}"] = bench.compare(infer_contestants(variant), params, bench.rounds, iters)


def bench_deploy(bench: Bench, results: dict[str, Any]) -> None:
    """B0 and B2 (--quick: B0) at 224, batch 1 and 16, on every CPU deployment; the float32 peak
    before and after."""
    roofline = [measure_roofline(bench)]
    bfloat16 = has_bfloat16_arithmetic(bench.machine)
    if not bfloat16:
        print("  no bfloat16 arithmetic on this CPU: the OpenVINO bf16-hint rows are left out", flush=True)
    for variant in ("b0",) if bench.quick else ("b0", "b2"):  # --quick: B0 only (conversions dominate)
        print(f"deployment {variant} (every engine, {DEPLOY_THREADS} threads)", flush=True)
        params = [{"batch": 1, "size": 224}, {"batch": 16, "size": 224}]
        iters = {
            json.dumps(params[0], sort_keys=True): 2 if bench.quick else 10,
            json.dumps(params[1], sort_keys=True): 1 if bench.quick else 2,
        }
        contestants = deploy_contestants(variant, bench.cache, bench.shared_weights(variant), bfloat16)
        # One set of workers per batch size: each holds only that shape's conversions (B2 at batch
        # 16 with both shapes held in every worker exceeded 24 GiB).
        runs = [bench.compare(contestants, [p], bench.rounds_of("deploy"), iters) for p in params]
        results[f"deploy_{variant}"] = {
            "cells": {key: row for run in runs for key, row in run["cells"].items()},
            "workers": {**runs[0]["workers"], **runs[-1]["workers"]},
        }
        results[f"deploy_{variant}"]["bfloat16_rows"] = bfloat16
        results[f"deploy_{variant}"]["timm_weights"] = bench.timm_files.get(variant, {})
    roofline.append(measure_roofline(bench))
    results["roofline"] = {"runs": roofline, "peak_gflops": max(r.get("peak_gflops", 0.0) for r in roofline)}


def measure_roofline(bench: Bench) -> dict[str, Any]:
    """`roofline.py` in a fresh process: the float32 matmul peak at `DEPLOY_THREADS` threads."""
    repeats = "3" if bench.quick else "10"
    command = [
        sys.executable,
        str(HERE / "roofline.py"),
        "--threads",
        str(DEPLOY_THREADS),
        "--repeats",
        repeats,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": done.stderr[-2000:]}
    measured = json.loads(lines[-1])
    print(
        f"  float32 matmul peak, {DEPLOY_THREADS} threads: {measured['peak_gflops']:.0f} GFLOP/s", flush=True
    )
    return measured


def bench_train(bench: Bench, results: dict[str, Any]) -> None:
    print("training step b0", flush=True)
    task = {"task": "train", "variant": "b0"}
    contestants = [Contestant(i, i, task) for i in ("keras_pvt", "timm", "kecam")]
    params = [{"batch": bench.args.train_batch, "size": 224}]
    results["train_b0"] = bench.compare(contestants, params, bench.rounds, 1 if bench.quick else 2)


def tflite_contestants(variant: str, cache: Path, shared: dict[str, str], int8: bool) -> list[Contestant]:
    """The float32 .tflite files of `variant` side by side (ours, kecam's, zeromodels', timm ->
    litert-torch), each made the way its project's users make it; with `int8`, also our mixed int8
    and every-op-integer files and kecam's int8 file. Ours and litert-torch's run timm's weights
    (`shared`)."""
    files = {"task": "tflite", "variant": variant, "cache": str(cache)}
    float32 = {**files, "quant": "float32"}
    contestants = [
        Contestant("keras_pvt_float32", "keras_pvt", {**float32, **shared}),
        Contestant("kecam_float32", "kecam", float32),
        Contestant("zeromodels_float32", "zeromodels", float32),
        Contestant("timm_litert_torch_float32", "litert_torch", {**float32, **shared}),
    ]
    if int8:
        contestants += [
            Contestant("keras_pvt_int8", "keras_pvt", {**files, "quant": "int8", **shared}),
            Contestant("kecam_int8", "kecam", {**files, "quant": "int8"}),
            Contestant("keras_pvt_int8_full", "keras_pvt", {**files, "quant": "int8-full", **shared}),
        ]
    return contestants


TFLITE_ITERS = {"b0": 10, "b2": 4}  # invokes per round and thread count (--quick: 3)


def bench_tflite(bench: Bench, results: dict[str, Any]) -> None:
    """.tflite files at batch 1, 224x224, on LiteRT at 1 and 2 threads: B0 and B2 (--quick: B0)
    float32 files of ours and every peer side by side; for B0 also the int8 files."""
    for variant in ("b0",) if bench.quick else ("b0", "b2"):
        print(f"TFLite {variant} (batch 1)", flush=True)
        contestants = tflite_contestants(
            variant, bench.cache, bench.shared_weights(variant), int8=variant == "b0"
        )
        params = [{"threads": 1}, {"threads": 2}]
        iters = 3 if bench.quick else TFLITE_ITERS[variant]
        results[f"tflite_{variant}"] = bench.compare(contestants, params, bench.rounds_of("tflite"), iters)
        results[f"tflite_{variant}"]["timm_weights"] = bench.timm_files.get(variant, {})


def bench_memory(bench: Bench, results: dict[str, Any]) -> None:
    print("peak memory, b0 inference at batch 16 (one fresh process each)", flush=True)
    memory: dict[str, Any] = {}
    for contestant in with_baseline(infer_contestants("b0"), bench.source):
        memory[contestant.label] = compare(
            [contestant], [{"batch": 16, "size": 224}], 1, 2, bench.pythons, bench.logs
        )["workers"]
    results["memory_b0"] = memory


def bench_scaling(bench: Bench, results: dict[str, Any]) -> None:
    print("resolution scaling, b2 vs b2_li (batch 1)", flush=True)
    sizes = [224, 320] if bench.quick else [224, 384, 512, 768, 1024]
    contestants = [
        Contestant(f"keras_pvt_{v}", "keras_pvt", {"task": "infer", "variant": v, "mode": "compiled"})
        for v in ("b2", "b2_li")
    ]
    params = [{"batch": 1, "size": s} for s in sizes]
    iters = {json.dumps(p, sort_keys=True): (1 if bench.quick or p["size"] >= 768 else 3) for p in params}
    results["scaling"] = bench.compare(contestants, params, 2 if bench.quick else 3, iters)
    results["scaling"]["sizes"] = sizes


def bench_bf16(bench: Bench, results: dict[str, Any]) -> None:
    print("bfloat16 accuracy cost (random weights)", flush=True)
    command = [sys.executable, str(HERE / "bf16_accuracy.py"), "--images", "8" if bench.quick else "16"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    results["bf16_accuracy"] = (
        json.loads(lines[-1]) if done.returncode == 0 and lines else {"error": done.stderr[-2000:]}
    )


def bench_segmentation(bench: Bench, results: dict[str, Any]) -> None:
    print("TFLite Semantic FPN b0 at 256 and 512 (segmentation_tflite.py)", flush=True)
    rounds = ["--rounds", "2", "--invokes", "3"] if bench.quick else []
    command = [sys.executable, str(HERE / "segmentation_tflite.py"), "--out", str(bench.args.output), *rounds]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    path = bench.args.output / "segmentation_tflite.json"
    results["segmentation_tflite"] = (
        json.loads(path.read_text()) if done.returncode == 0 else {"error": done.stderr[-2000:]}
    )


def bench_backends(bench: Bench, results: dict[str, Any]) -> None:
    """B0 inference on Keras' three backends, each `compile_inference` beside its plain call."""
    print("inference b0 on TensorFlow, JAX and PyTorch", flush=True)
    task = {"task": "infer", "variant": "b0"}
    contestants = [
        Contestant("tensorflow", "keras_pvt", {**task, "mode": "compiled"}),
        Contestant("tensorflow_tf_function", "keras_pvt", {**task, "mode": "tf_function"}),
        *(
            Contestant(f"{backend}{suffix}", "keras_pvt_backend", {**task, "backend": backend, "mode": mode})
            for backend in ("jax", "torch")
            for suffix, mode in (("", "compiled"), ("_plain", "plain"))
        ),
    ]
    params = [{"batch": 1, "size": 224}, {"batch": 16, "size": 224}]
    iters = {
        json.dumps(params[0], sort_keys=True): 2 if bench.quick else 8,
        json.dumps(params[1], sort_keys=True): 1 if bench.quick else 2,
    }
    results["backends_b0"] = bench.compare(contestants, params, bench.rounds, iters)


GROUP_RUNNERS = {
    "infer": bench_infer,
    "deploy": bench_deploy,
    "train": bench_train,
    "tflite": bench_tflite,
    "memory": bench_memory,
    "scaling": bench_scaling,
    "bf16": bench_bf16,
    "segmentation": bench_segmentation,
    "backends": bench_backends,
}


def run_groups(bench: Bench) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for group in GROUPS:
        if group in bench.args.only:
            GROUP_RUNNERS[group](bench, results)
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (noisy numbers)")
    parser.add_argument("--only", default=",".join(GROUPS), help=f"comma list of {GROUPS}")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also time keras-pvt at this git revision (e.g. HEAD), side by side with the working tree",
    )
    parser.add_argument("--peers", type=Path, default=Path(os.environ.get("PVT_PEERS", "/tmp/pvt-peers")))
    parser.add_argument("--output", type=Path, default=HERE / "results")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help=f"alternation rounds per measurement (default: {DEFAULT_ROUNDS} per group, else {OTHER_ROUNDS})",
    )
    parser.add_argument("--train-batch", type=int, default=16)
    args = parser.parse_args(argv)
    args.only = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = sorted(set(args.only) - set(GROUPS))
    if unknown:
        parser.error(f"unknown group(s) {unknown}; choose from {GROUPS}")
    if args.baseline:
        try:
            args.baseline_commit = resolve_revision(args.baseline)
        except ValueError as error:
            parser.error(str(error))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pythons = interpreters(args.peers)
    missing = sorted(set(PEER_VENVS) - set(pythons))
    if missing:
        print(
            f"peers not found under {args.peers}: {missing} (build them with "
            f"../shared/peers/setup.sh); comparing without them",
            flush=True,
        )
    args.output.mkdir(parents=True, exist_ok=True)
    started = time.time()
    machine = machine_info()
    print(f"{machine['cpu_model']}: {machine['simd']}", flush=True)
    run = {
        "machine": machine,
        "quick": args.quick,
        "groups": args.only,
        "interpreters": {k: str(v) for k, v in pythons.items()},
    }
    if args.baseline:
        run["baseline"] = {"revision": args.baseline, "commit": args.baseline_commit}
    with contextlib.ExitStack() as stack:
        cache = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pvt-bench-")))
        source = stack.enter_context(baseline_tree(args.baseline_commit)) if args.baseline else None
        run["results"] = run_groups(Bench(args, pythons, cache, source, machine))
    run["load_average_after"] = os.getloadavg()
    run["duration_s"] = time.time() - started
    paths = write_reports(run, args.output)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
