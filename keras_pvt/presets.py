"""Named PVT-v2 presets: the official architectures of the paper (b0-b5 and b2-Li)."""

from __future__ import annotations

from keras_pvt.config import PVTV2Config

_NARROW = {"embed_dims": (32, 64, 160, 256)}
_WIDE = {"embed_dims": (64, 128, 320, 512)}
_COMMON = {
    "num_heads": (1, 2, 5, 8),
    "mlp_ratios": (8, 8, 4, 4),
    "sr_ratios": (8, 4, 2, 1),
    "qkv_bias": True,
}

PRESETS: dict[str, PVTV2Config] = {
    "b0": PVTV2Config(**_COMMON, **_NARROW, depths=(2, 2, 2, 2)),
    "b1": PVTV2Config(**_COMMON, **_WIDE, depths=(2, 2, 2, 2)),
    "b2": PVTV2Config(**_COMMON, **_WIDE, depths=(3, 4, 6, 3)),
    "b2_li": PVTV2Config(**_COMMON, **_WIDE, depths=(3, 4, 6, 3), linear=True),
    "b3": PVTV2Config(**_COMMON, **_WIDE, depths=(3, 4, 18, 3)),
    "b4": PVTV2Config(**_COMMON, **_WIDE, depths=(3, 8, 27, 3)),
    "b5": PVTV2Config(**{**_COMMON, "mlp_ratios": (4, 4, 4, 4)}, **_WIDE, depths=(3, 6, 40, 3)),
}

# Stochastic depth of the official ImageNet training recipes, per variant.
DEFAULT_DROP_PATH = {"b0": 0.1, "b1": 0.1, "b2": 0.1, "b2_li": 0.1, "b3": 0.3, "b4": 0.3, "b5": 0.3}


def canonical_variant(variant: str) -> str:
    """Normalised preset key ("pvt_v2_b2_li", "PVTV2-B2-Li" -> "b2_li"); ValueError if unknown."""
    key = variant.lower().replace("-", "_").removeprefix("pvt_v2").removeprefix("pvtv2").lstrip("_")
    if key not in PRESETS:
        raise ValueError(f"Unknown PVT-v2 variant {variant!r}; choose one of {sorted(PRESETS)}.")
    return key


def get_config(variant: str) -> PVTV2Config:
    """The preset config for `variant` (e.g. "b0", "pvt_v2_b2_li")."""
    return PRESETS[canonical_variant(variant)]
