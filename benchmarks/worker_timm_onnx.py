"""Benchmark worker for timm exported to ONNX, run by ONNX Runtime or OpenVINO (the timm peer venv).

What a PyTorch user deploying PVT-v2 on a CPU would pick. See `worker_protocol.py`.

Task keys: "task" ("infer"), "variant", "engine" ("onnxruntime" or "openvino"), "precision"
("f32", or "bf16" for OpenVINO: its INFERENCE_PRECISION_HINT), "threads" (intra-op threads, default
2), "cache" (folder for the .onnx file), "weights" (optional: a `.safetensors` state dict, else
random weights, seed 0; `timm_common.timm_model`). The model is exported once per variant and
weights with `torch.onnx.export(..., dynamo=False, opset_version=17)`, dynamic batch, and cached
there. ONNX Runtime runs the dynamic-batch graph (sequential, all graph optimisations); OpenVINO
compiles it per static input shape (`openvino_runner`). Run params "batch", "size"; each run's
facts compare the outputs with timm's own on the same images (`output_check.compare_outputs`) and
name the precision the engine reports it runs in.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import worker_protocol
from openvino_runner import openvino_runner
from output_check import compare_outputs
from timm_common import timm_model

ENGINES = ("onnxruntime", "openvino")
OPSET = 17


def export_onnx(model: Any, path: Path, size: int) -> None:
    """Export `model` to `path` (written beside, then renamed) unless a previous export is there."""
    import torch

    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, size, size),),
        str(partial),
        dynamo=False,
        opset_version=OPSET,
        input_names=["images"],
        output_names=["logits"],
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
    )
    os.replace(partial, path)


def onnxruntime_runner(path: Path, threads: int, versions: dict[str, str]):
    """images -> logits with an ONNX Runtime CPU session of `threads` intra-op threads."""
    import onnxruntime as ort

    versions["onnxruntime"] = ort.__version__
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def prepare_shape(images: Any) -> tuple[Any, dict[str, Any]]:
        return (lambda: session.run(None, {"images": images})[0]), {"precision": "f32"}

    return prepare_shape


def main() -> None:
    task = json.loads(sys.argv[1])
    engine, precision = task.get("engine"), task.get("precision", "f32")
    if task.get("task") != "infer" or engine not in ENGINES:
        raise ValueError(f"this worker times inference with {ENGINES}, got {task}")
    if precision != "f32" and engine != "openvino":
        raise ValueError(f"precision {precision!r} is an OpenVINO hint; ONNX Runtime runs f32")
    try:
        import onnx
        import timm
        import torch

        __import__(engine)
    except ImportError as error:
        raise worker_protocol.ContestantUnavailableError(
            f"{error.name} is not installed in the timm venv (../shared/peers/setup.sh adds it)"
        ) from error

    threads = int(task.get("threads", 2))
    versions = {"torch": torch.__version__, "timm": timm.__version__, "onnx": onnx.__version__}
    model = timm_model(task).eval()
    origin = "shared" if task.get("weights") else "seed0"  # a file per weights: never a stale one
    path = Path(task["cache"]) / f"timm_pvt_v2_{task['variant']}_{origin}_opset{OPSET}.onnx"
    export_onnx(model, path, 224)
    if engine == "onnxruntime":
        prepare_shape = onnxruntime_runner(path, threads, versions)
    else:
        prepare_shape = openvino_runner(path, threads, precision, versions)

    def prepare(params: dict[str, Any]):
        size = params.get("size", 224)
        images = torch.randn(params["batch"], 3, size, size)
        with torch.inference_mode():
            reference = model(images).numpy()
        step, facts = prepare_shape(images.numpy())
        return step, {**facts, **compare_outputs(step(), reference)}

    worker_protocol.serve(prepare, versions)


if __name__ == "__main__":
    worker_protocol.run(main)
