"""Benchmark worker for timm (run with the timm peer venv: PyTorch CPU). See `worker_protocol.py`.

Tasks: "infer" (eval mode under `torch.inference_mode`, NCHW float32) and "train" (AdamW step,
cross-entropy on logits, drop path 0.1); run params "batch" and "size". Optional task key "weights":
a `.safetensors` state dict to load (`timm_common.timm_model`; default: random init, seed 0).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import worker_protocol
from timm_common import timm_model


def main() -> None:
    task = json.loads(sys.argv[1])
    import timm
    import torch

    versions = {
        "torch": torch.__version__,
        "timm": timm.__version__,
        "torch_threads": str(torch.get_num_threads()),
    }
    kind = task["task"]

    if kind == "infer":
        model = timm_model(task).eval()

        def prepare(params: dict[str, Any]):
            size = params.get("size", 224)
            images = torch.randn(params["batch"], 3, size, size)

            def step():
                with torch.inference_mode():
                    return model(images)

            return step

    elif kind == "train":
        model = timm_model(task, drop_path_rate=0.1).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
        loss_fn = torch.nn.CrossEntropyLoss()

        def prepare(params: dict[str, Any]):
            size, batch = params.get("size", 224), params["batch"]
            images = torch.randn(batch, 3, size, size)
            labels = torch.randint(0, 1000, (batch,))

            def step():
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(images), labels)
                loss.backward()
                optimizer.step()
                return loss.item()

            return step

    else:
        raise ValueError(f"unknown task {kind!r}")
    worker_protocol.serve(prepare, versions)


if __name__ == "__main__":
    main()
