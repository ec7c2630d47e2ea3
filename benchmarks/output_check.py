"""How far an engine's outputs are from their reference's (NumPy only; every venv has it)."""

from __future__ import annotations

from typing import Any


def compare_outputs(outputs: Any, reference: Any) -> dict[str, float]:
    """Largest absolute difference, the reference's largest magnitude, the relative error (norm of
    the difference over the reference's norm), the centred relative error (over the norm of the
    reference less its mean per image, as `keras-pvt export` verifies files: a file that outputs
    each image's mean score gets 1.0 however uniform the reference) and the top-1 agreement."""
    import numpy as np

    got = np.asarray(outputs, "float64").reshape(len(reference), -1)
    want = np.asarray(reference, "float64").reshape(len(reference), -1)
    if got.shape != want.shape:
        raise ValueError(f"outputs of shape {got.shape} cannot be compared with a reference {want.shape}")
    difference = np.linalg.norm(np.nan_to_num(got - want, nan=np.inf))
    spread = want - want.mean(-1, keepdims=True) if want.shape[-1] > 1 else want
    return {
        "max_abs_diff": float(np.max(np.abs(got - want))),
        "max_abs_reference": float(np.max(np.abs(want))),
        "relative_error": float(difference / max(np.linalg.norm(want), 1e-30)),
        "centred_relative_error": float(difference / max(np.linalg.norm(spread), 1e-30)),
        "top1_agreement": float(np.mean(got.argmax(-1) == want.argmax(-1))),
    }
