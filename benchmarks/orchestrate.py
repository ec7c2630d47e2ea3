"""Run implementations side by side: one worker process per contestant, alternating run by run."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKERS = {
    "keras_pvt": "worker_keras_pvt.py",
    "keras_pvt_backend": "worker_keras_pvt_backend.py",  # keras-pvt on JAX or PyTorch
    "keras_pvt_deploy": "worker_keras_pvt_deploy.py",  # compile_inference engines, our files on runtimes
    "timm": "worker_timm.py",
    "timm_onnx": "worker_timm_onnx.py",  # timm -> ONNX -> ONNX Runtime / OpenVINO, in timm's venv
    "kecam": "worker_kecam.py",
    "zeromodels": "worker_zeromodels.py",  # zeromodels (Keras 3) on TensorFlow and its LiteRT export
    "litert_torch": "worker_litert_torch.py",  # timm -> litert-torch -> LiteRT
}
# The peers' virtual environments under `--peers` (`../shared/peers/setup.sh` builds them).
PEER_VENVS = {"timm": "timm", "kecam": "kecam", "zeromodels": "zm", "litert_torch": "lt"}
# Implementations that run in another implementation's virtual environment (its key in `interpreters`).
VENVS = {"keras_pvt_backend": "keras_pvt", "keras_pvt_deploy": "keras_pvt", "timm_onnx": "timm"}
PREFIX = "@@ "
SETTLE_S = 0.5  # pause before each timed run, so one worker's idle threads never overlap the next one
# Workers importing their frameworks at once: one per usable CPU (nothing is timed while they start).
STARTUP_WAVE = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def interpreters(peers: Path) -> dict[str, Path]:
    """Python executable per implementation; peers whose venv is missing are left out."""
    found = {"keras_pvt": Path(sys.executable)}
    for impl, venv in PEER_VENVS.items():
        python = peers / venv / "bin" / "python"
        if python.exists():
            found[impl] = python
    for impl, venv in VENVS.items():
        if venv in found:
            found[impl] = found[venv]
    return found


@dataclass
class Contestant:
    """One column of a comparison: an implementation, its worker task and a display label."""

    label: str
    impl: str
    task: dict[str, Any]


class Worker:
    """A worker process speaking `worker_protocol`; `greet()` waits for its first message."""

    def __init__(self, python: Path, contestant: Contestant, log_dir: Path) -> None:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
        if contestant.impl == "kecam":
            env["TF_USE_LEGACY_KERAS"] = "1"
        if contestant.impl == "zeromodels":
            env["KERAS_BACKEND"] = "tensorflow"
        env.pop("PYTHONPATH", None)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(log_dir / f"{contestant.label}.log", "ab")  # noqa: SIM115 (closed in quit)
        self.process = subprocess.Popen(
            [str(python), str(HERE / WORKERS[contestant.impl]), json.dumps(contestant.task)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
            text=True,
        )
        self.hello: dict[str, Any] = {}

    def greet(self) -> dict[str, Any]:
        """The worker's first message (ready, or skipped), once its imports are done."""
        self.hello = self.receive()
        return self.hello

    def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(PREFIX):
                return json.loads(line[len(PREFIX) :])
        raise RuntimeError(f"worker exited (code {self.process.wait()}); see {self.log.name}")

    def request(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.receive()

    def quit(self) -> dict[str, Any]:
        try:
            return self.request({"cmd": "quit"})
        finally:
            self.close()

    def close(self) -> None:
        self.process.wait(timeout=60)
        self.log.close()


@dataclass
class Cell:
    """Timings of one contestant at one parameter set, pooled over rounds."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    round_medians: list[float] = field(default_factory=list)
    prepare_s: float = 0.0
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def summary(self, per_call: int = 1) -> dict[str, Any]:
        if not self.wall:
            return {"error": self.error or "no timings", "facts": self.facts}
        median = statistics.median(self.wall)
        return {
            "median_s": median,
            "min_s": min(self.wall),
            "max_s": max(self.wall),
            "per_s": per_call / median,
            "per_s_min": per_call / max(self.wall),
            "per_s_max": per_call / min(self.wall),
            "cpu_median_s": statistics.median(self.cpu),
            "round_medians_s": self.round_medians,
            "samples": len(self.wall),
            "prepare_s": self.prepare_s,
            "facts": self.facts,
            "error": self.error,
        }


def compare(
    contestants: list[Contestant],
    params_list: list[dict[str, Any]],
    rounds: int,
    iters: int | dict[str, int],
    pythons: dict[str, Path],
    log_dir: Path,
) -> dict[str, Any]:
    """Time every contestant at every params, alternating contestants run by run.

    `iters` may map a params key (its JSON) to a count. Workers start `STARTUP_WAVE` at a time
    (every one is loaded and idle before the first timed run); each round rotates the order so no
    contestant always runs first.
    Returns {"cells": {params_key: {label: summary}}, "workers": {label: hello + peak memory}}.
    """
    present = [c for c in contestants if c.impl in pythons]
    workers: dict[str, Worker] = {}
    info: dict[str, Any] = {
        c.label: {"skipped": f"{c.impl} not installed"} for c in contestants if c.impl not in pythons
    }
    python_of = {c.label: str(pythons[c.impl]) for c in present}
    try:
        for first in range(0, len(present), STARTUP_WAVE):
            wave = present[first : first + STARTUP_WAVE]
            started = [(c, Worker(pythons[c.impl], c, log_dir)) for c in wave]
            for contestant, worker in started:
                try:
                    worker.greet()
                except RuntimeError as error:
                    info[contestant.label] = {"error": str(error)}
                    continue
                if worker.hello.get("ready") is False:
                    info[contestant.label] = {"skipped": worker.hello["skipped"]}
                    print(f"  skipped {contestant.label}: {worker.hello['skipped']}", flush=True)
                    worker.close()
                    continue
                workers[contestant.label] = worker
        cells: dict[str, dict[str, Any]] = {}
        for params in params_list:
            key = json.dumps(params, sort_keys=True)
            count = iters if isinstance(iters, int) else iters[key]
            timings = {label: Cell() for label in workers}
            for r in range(rounds):
                order = list(workers)
                order = order[r % len(order) :] + order[: r % len(order)] if order else order
                for label in order:
                    cell = timings[label]
                    if cell.error:
                        continue
                    time.sleep(SETTLE_S)  # let the previous worker's spinning threads go idle
                    try:
                        reply = workers[label].request({"cmd": "run", "params": params, "iters": count})
                    except (RuntimeError, OSError) as error:  # the worker died (e.g. killed for memory)
                        reply = {"error": f"worker died: {error}"}
                    if "error" in reply:
                        cell.error = reply["error"]
                        continue
                    cell.wall += reply["wall"]
                    cell.cpu += reply["cpu"]
                    cell.round_medians.append(statistics.median(reply["wall"]))
                    cell.prepare_s += reply["prepare_s"]
                    cell.facts.update(reply.get("facts", {}))
            per_call = params.get("batch", 1)
            cells[key] = {label: cell.summary(per_call) for label, cell in timings.items()}
            _progress(params, cells[key])
    finally:
        for label, worker in workers.items():
            try:
                info[label] = {**worker.hello, **worker.quit()}
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
                worker.process.kill()
                info[label] = {**worker.hello, "error": str(error)}
        for label, python in python_of.items():  # which environment's versions each worker reports
            info.setdefault(label, {})["python"] = python
    return {"cells": cells, "workers": info}


def _progress(params: dict[str, Any], row: dict[str, Any]) -> None:
    parts = [
        f"{label}={s['per_s']:.2f}/s" if "per_s" in s else f"{label}=ERROR({s['error'][:60]})"
        for label, s in row.items()
    ]
    print(f"  [{time.strftime('%H:%M:%S')}] {params}: " + "  ".join(parts), flush=True)
