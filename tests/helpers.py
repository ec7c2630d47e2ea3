"""Small shared helpers for the tests (importable as `helpers`: pytest puts tests/ on sys.path)."""

from __future__ import annotations

from keras_pvt import PVTV2Config


def tiny_config(**changes) -> PVTV2Config:
    """A PVT-v2 small enough to run in milliseconds, with every kind of layer present."""
    base = {
        "embed_dims": (16, 32, 48, 64),
        "num_heads": (1, 2, 3, 4),
        "mlp_ratios": (4, 4, 2, 2),
        "depths": (1, 1, 1, 1),
        "sr_ratios": (8, 4, 2, 1),
        "num_classes": 10,
    }
    base.update(changes)
    return PVTV2Config(**base)
