"""The timm model every PyTorch-side worker builds (timm, timm -> ONNX, timm -> litert-torch)."""

from __future__ import annotations

from typing import Any


def timm_model(task: dict[str, Any], **kwargs: Any) -> Any:
    """`timm.create_model("pvt_v2_<variant>")` after `torch.manual_seed(0)`, with the task's
    "weights" (a `.safetensors` state dict, `timm_weights.py`) loaded when it names one, so that
    every contestant built from timm and keras-pvt run the same weights."""
    import timm
    import torch

    torch.manual_seed(0)
    model = timm.create_model(f"pvt_v2_{task['variant']}", pretrained=False, **kwargs)
    if task.get("weights"):
        from safetensors.torch import load_file

        model.load_state_dict(load_file(task["weights"]))
    return model
