"""How far an engine's outputs are from their reference's (NumPy only; every venv has it)."""

from __future__ import annotations

from typing import Any


def compare_outputs(outputs: Any, reference: Any) -> dict[str, float]:
    """Largest absolute difference, the reference's largest magnitude, the relative error (norm of
    the difference over the reference's norm) and the top-1 agreement over the batch."""
    import numpy as np

    got = np.asarray(outputs, "float64").reshape(len(reference), -1)
    want = np.asarray(reference, "float64").reshape(len(reference), -1)
    if got.shape != want.shape:
        raise ValueError(f"outputs of shape {got.shape} cannot be compared with a reference {want.shape}")
    return {
        "max_abs_diff": float(np.max(np.abs(got - want))),
        "max_abs_reference": float(np.max(np.abs(want))),
        "relative_error": float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30)),
        "top1_agreement": float(np.mean(got.argmax(-1) == want.argmax(-1))),
    }
