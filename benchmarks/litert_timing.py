"""The LiteRT timing loop shared by the stand-alone TFLite benchmarks (`tflite_headroom.py`,
`segmentation_tflite.py`): interpreters made ready once, then timed in turn, round by round, so that
drift on the machine spreads over every file and thread count alike."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Hashable
from pathlib import Path
from typing import Any


def invoke_ms(interpreter: Any, invokes: int) -> list[float]:
    """Wall time of each of `invokes` calls of `interpreter.invoke()`, in milliseconds."""
    times = []
    for _ in range(invokes):
        start = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def ready_interpreter(model: Path | bytes, threads: int, rng: Any, warmup: int) -> Any:
    """A LiteRT interpreter of `model` (a path or a flatbuffer) with `threads` threads, its input set
    to standard-normal float32 images and `warmup` untimed invokes done."""
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(model, bytes):
        interpreter = Interpreter(model_content=model, num_threads=threads)
    else:
        interpreter = Interpreter(model_path=str(model), num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], rng.normal(size=detail["shape"]).astype("float32"))
    invoke_ms(interpreter, warmup)
    return interpreter


def round_medians(
    interpreters: dict[Hashable, Any], rounds: int, invokes: int
) -> dict[Hashable, list[float]]:
    """Per key, the median invoke time (ms) of each round; every interpreter runs once per round."""
    samples: dict[Hashable, list[float]] = {key: [] for key in interpreters}
    for index in range(rounds):
        for key, interpreter in interpreters.items():
            samples[key].append(statistics.median(invoke_ms(interpreter, invokes)))
        print(f"round {index + 1}/{rounds} done", file=sys.stderr, flush=True)
    return samples
