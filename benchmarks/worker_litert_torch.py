"""Benchmark worker for timm's PVT-v2 converted by litert-torch and run on LiteRT (the `lt` peer venv).
See `worker_protocol.py`.

What a PyTorch user targeting the edge would ship: `litert_torch.convert(model, (torch.randn(1, 3,
224, 224),)).export(path)`, a float32 file fixed at the sample's shape, batch 1 (NCHW input; other
batches are reported as unavailable: the file cannot be resized). Task keys: "task" ("tflite"),
"variant", "cache" (folder for the file), "threads" (used when the run gives none), "weights"
(optional: timm's state dict from `timm_weights.py`, else random init, seed 0;
`timm_common.timm_model`). Run params "threads", "batch". Facts: the file's size and its outputs
vs timm's on the same images (`compare_outputs`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import worker_protocol  # noqa: E402
from tf_common import TFLITE_SIZE, tflite_task, version  # noqa: E402
from timm_common import timm_model  # noqa: E402


def litert_torch_writer(model: Any):
    """`write(path, batch)` for `tflite_task`: litert-torch's conversion at a (batch, 3, 224, 224)
    sample (batch 1 here), written beside and renamed."""
    import litert_torch
    import torch

    def write(path: Path, batch: int) -> None:
        sample = (torch.randn(batch, 3, TFLITE_SIZE, TFLITE_SIZE),)
        partial = path.with_name(f".{os.getpid()}.partial.{path.name}")
        litert_torch.convert(model, sample).export(str(partial))
        os.replace(partial, path)

    return write


def main() -> None:
    task = json.loads(sys.argv[1])
    if task.get("task") != "tflite":
        raise ValueError(f"this worker times timm -> litert-torch .tflite files, got {task}")
    if task.get("quant", "float32") != "float32":
        raise worker_protocol.ContestantUnavailableError("only float32 files are made with litert-torch")
    try:
        import litert_torch  # noqa: F401
        import numpy as np
        import timm
        import torch
    except ImportError as error:
        raise worker_protocol.ContestantUnavailableError(
            f"{error.name} is not installed in the lt venv (../shared/peers/setup.sh builds it)"
        ) from error

    versions = {
        "litert_torch": version("litert-torch"),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "numpy": np.__version__,
    }
    model = timm_model(task).eval()
    rng = np.random.default_rng(0)

    def reference(images: Any) -> Any:
        with torch.inference_mode():
            return model(torch.from_numpy(images)).numpy()

    origin = "shared" if task.get("weights") else "seed0"  # a file per weights: never a stale one
    prepare = tflite_task(
        {**task, "quant": "float32"},
        f"litert_torch_{origin}",
        litert_torch_writer(model),
        rng,
        versions,
        reference,
        per_batch=False,
    )
    worker_protocol.serve(prepare, versions)


if __name__ == "__main__":
    worker_protocol.run(main)
