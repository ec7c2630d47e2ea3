"""Line protocol between `run_all.py` and one benchmark worker process (standard library only).

Each implementation runs in its own process, in its own virtual environment, so the orchestrator can
alternate implementations run by run. A worker is started as ``python worker_x.py '<task json>'``; it
prints messages as single lines prefixed with ``@@ `` (framework logs on stdout are ignored):

    @@ {"ready": true, "versions": {...}, "rss_mb": ...}     after imports
    @@ {"ready": false, "skipped": "why"}                   instead, when this contestant cannot run
                                                            here (then the worker exits)
    <- {"cmd": "run", "params": {...}, "iters": n}          from the orchestrator, on stdin
    @@ {"wall": [...], "cpu": [...], "prepare_s": ...,      one wall and process-CPU time per iteration,
        "facts": {...}}                                     and what `prepare` found (first run only)
    <- {"cmd": "quit"}
    @@ {"peak_rss_mb": ...}                                 the process's peak resident memory

`prepare(params)` returns a zero-argument step that does one timed iteration, synchronised (the
result is fetched), or a pair (step, facts) whose JSON-able `facts` (an output's largest difference
from its reference, a file's size) travel with the first reply. Steps are cached per params, and
warmed up (`WARMUP` untimed calls, which include tracing, compilation and conversion) the first
time; later requests start with one untimed call. A worker that cannot run its contestant here (a
mode or engine the installed packages lack) raises `ContestantUnavailableError` under `run`.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

PREFIX = "@@ "
WARMUP = 2


def rss_mb() -> float:
    """Current resident set size of this process, in MiB."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(PREFIX + json.dumps(message) + "\n")
    sys.stdout.flush()


class ContestantUnavailableError(Exception):
    """This contestant (raised before `serve`) or these params (in `prepare`) cannot run here: the
    installed packages lack the engine or mode. Reported as skipped, never as a timing."""


def run(main: Callable[[], None]) -> None:
    """Run a worker's `main`; that error before `serve` tells the orchestrator why, then exits."""
    try:
        main()
    except ContestantUnavailableError as reason:
        send({"ready": False, "skipped": str(reason)})


def serve(prepare: Callable[[dict[str, Any]], Callable[[], Any]], versions: dict[str, str]) -> None:
    """Answer the orchestrator's commands until "quit" (or end of input)."""
    send({"ready": True, "versions": versions, "rss_mb": rss_mb()})
    steps: dict[str, Callable[[], Any]] = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        if command["cmd"] == "quit":
            break
        try:
            key = json.dumps(command.get("params", {}), sort_keys=True)
            prepare_s, facts = 0.0, {}
            if key not in steps:
                start = time.perf_counter()
                step = prepare(command.get("params", {}))
                if isinstance(step, tuple):
                    step, facts = step
                for _ in range(WARMUP):
                    step()
                prepare_s = time.perf_counter() - start
                steps[key] = step
            else:
                steps[key]()  # one untimed call: caches and thread pools warm after another worker ran
            wall, cpu = [], []
            for _ in range(int(command.get("iters", 1))):
                cpu_start, start = time.process_time(), time.perf_counter()
                steps[key]()
                wall.append(time.perf_counter() - start)
                cpu.append(time.process_time() - cpu_start)
            send({"wall": wall, "cpu": cpu, "prepare_s": prepare_s, "facts": facts, "rss_mb": rss_mb()})
        except ContestantUnavailableError as reason:  # these params cannot run here
            send({"error": f"skipped: {reason}", "skipped": True})
        except Exception as error:  # reported to the orchestrator, which records it per cell
            send({"error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()})
    send({"peak_rss_mb": peak_rss_mb()})
