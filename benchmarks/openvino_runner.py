"""OpenVINO on the CPU as the benchmarks run it, for timm's ONNX graph and for our IR alike.

Each input shape gets its own compiled model (the graph reshaped to that static shape, as a
deployment with a fixed input would do), with INFERENCE_NUM_THREADS threads, PERFORMANCE_HINT
LATENCY (one stream, one synchronous request) and INFERENCE_PRECISION_HINT "f32" or "bf16"; the
facts name the precision the compiled model reports.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

PRECISIONS = ("f32", "bf16")


def openvino_runner(
    path: Path, threads: int, precision: str, versions: dict[str, str]
) -> Callable[[Any], tuple[Callable[[], Any], dict[str, Any]]]:
    """images (NumPy) -> (a step returning the first output, facts), compiling per image shape."""
    import openvino as ov

    if precision not in PRECISIONS:
        raise ValueError(f"OpenVINO precision must be one of {PRECISIONS}, got {precision!r}")
    versions["openvino"] = ov.__version__
    core = ov.Core()
    config = {
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": precision,
        "PERFORMANCE_HINT": "LATENCY",
    }

    def prepare_shape(images: Any) -> tuple[Callable[[], Any], dict[str, Any]]:
        model = core.read_model(str(path))
        model.reshape(list(images.shape))
        compiled = core.compile_model(model, "CPU", config)
        request = compiled.create_infer_request()
        ran_in = compiled.get_property("INFERENCE_PRECISION_HINT")
        facts = {"precision": ran_in.to_string() if hasattr(ran_in, "to_string") else str(ran_in)}

        def step() -> Any:
            request.infer({0: images})
            return request.get_output_tensor(0).data.copy()

        return step, facts

    return prepare_shape
