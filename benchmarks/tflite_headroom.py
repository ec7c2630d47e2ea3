"""How much faster could any TFLite B0 float32 graph get? Times the model with op groups made free.

    python benchmarks/tflite_headroom.py [--rounds 5] [--invokes 40] [--out benchmarks/results]

A diagnostic, not a model anyone should ship. It converts B0 (batch 1, 224, builtin ops, with
`keras_pvt.export.convert_to_tflite`) several times: once as it is, and once with each group of
non-matmul ops replaced by the identity while tracing (LayerNorm, exact GELU, the MLP's depthwise
conv, the attention softmax, and all four at once). The converter then drops those ops, so each
variant's latency is what the model would cost if that group cost nothing. Whatever a
reformulation of these ops could save is bounded by the gap. Variants alternate within each round,
so drift on the machine cancels; writes `tflite_headroom.json` and `tflite_headroom.md` (medians,
min-max, ratio to the unchanged model).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from litert_timing import ready_interpreter, round_medians  # noqa: E402
from machine import environment_name, installed_versions, machine_info, provenance_lines  # noqa: E402
from tf_common import keras_pvt_tflite  # noqa: E402

THREADS = (1, 2)
LIBRARIES = ("keras-pvt", "keras", "tensorflow", "ai-edge-litert", "numpy")  # versions recorded


def identity(x: Any, *args: Any, **kwargs: Any) -> Any:
    return x


@contextlib.contextmanager
def replaced(owner: Any, name: str, value: Any) -> Iterator[None]:
    """`owner.name = value` for the duration of the block."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def ablations() -> dict[str, Callable[[], contextlib.AbstractContextManager]]:
    """Name -> context in which that op group traces as the identity."""
    import keras

    from keras_pvt.layers import attention, mlp, norm

    def no_gelu() -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(replaced(mlp, "exact_gelu", identity))
        stack.enter_context(replaced(attention, "exact_gelu", identity))
        return stack

    groups = {
        "LayerNorm": lambda: replaced(norm.LayerNorm, "call", lambda self, x, training=None: x),
        "GELU": no_gelu,
        "depthwise conv": lambda: replaced(keras.layers.DepthwiseConv2D, "call", lambda self, x: x),
        "softmax": lambda: replaced(attention.ops, "softmax", identity),
    }

    def all_four() -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        for enter in groups.values():
            stack.enter_context(enter())
        return stack

    return {"unchanged": contextlib.nullcontext, **groups, "all four": all_four}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--invokes", type=int, default=40, help="timed invokes per variant and round")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()

    import numpy as np

    from keras_pvt import PVT_V2

    machine = machine_info()  # the load before the run
    rng = np.random.default_rng(0)
    model = PVT_V2("b0")
    flatbuffers = {}
    with tempfile.TemporaryDirectory(prefix="pvt-headroom-") as folder:
        for index, (name, context) in enumerate(ablations().items()):
            path = Path(folder) / f"variant{index}.tflite"
            with context():
                keras_pvt_tflite(model, "float32", rng)(path)
            flatbuffers[name] = path.read_bytes()

    interpreters = {
        (threads, name): ready_interpreter(flatbuffer, threads, rng, warmup=5)
        for threads in THREADS
        for name, flatbuffer in flatbuffers.items()
    }
    medians = round_medians(interpreters, args.rounds, args.invokes)
    samples = {t: {name: medians[t, name] for name in flatbuffers} for t in THREADS}

    results = {
        "machine": machine,
        "load_average_after": os.getloadavg(),
        "versions": {environment_name(): installed_versions(LIBRARIES)},
        "rounds": args.rounds,
        "invokes": args.invokes,
        "latency_ms": {str(t): samples[t] for t in THREADS},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tflite_headroom.json").write_text(json.dumps(results, indent=1))
    (args.out / "tflite_headroom.md").write_text(report(results))
    print(report(results))
    return 0


def report(results: dict[str, Any]) -> str:
    lines = [
        "# TFLite B0 float32 headroom: latency with op groups made free (batch 1, 224x224)",
        "",
        *provenance_lines(results["machine"], results.get("load_average_after"), results.get("versions", {})),
        f"{results['rounds']} rounds x {results['invokes']} invokes, medians of round medians.",
        "",
        "| op group traced as identity | threads | latency ms (min-max) | vs unchanged |",
        "|---|---|---|---|",
    ]
    for threads, by_name in results["latency_ms"].items():
        base = statistics.median(by_name["unchanged"])
        for name, values in by_name.items():
            median = statistics.median(values)
            lines.append(
                f"| {name} | {threads} | {median:.2f} ({min(values):.2f}-{max(values):.2f}) "
                f"| {median / base:.2f}x |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
