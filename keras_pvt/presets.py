"""The PVT-v2 variants of the paper (b0-b5 and b2-Li): one record each, with everything known about it.

A `Variant` holds the architecture (`config`), the stochastic depth of the official ImageNet
training recipe (`drop_path_rate`) and where its public ImageNet-1k checkpoint lives (`imagenet`).
`PRESETS` is the name -> config view of the same table.
"""

from __future__ import annotations

import dataclasses

from keras_pvt.config import PVTV2Config

_HUB = "https://huggingface.co/timm/pvt_v2_{}.in1k/resolve/main/model.safetensors"


@dataclasses.dataclass(frozen=True)
class PretrainedCheckpoint:
    """A downloadable checkpoint: URL, sha256 of the file (None when not yet pinned), cache name."""

    url: str
    sha256: str | None
    fname: str


@dataclasses.dataclass(frozen=True)
class Variant:
    """One named PVT-v2: its architecture, training default and public ImageNet-1k weights, and the
    paper's ADE20K val mIoU (%) of Semantic FPN and COCO val box AP of RetinaNet 1x on it (None
    where the paper gives none)."""

    config: PVTV2Config
    drop_path_rate: float
    imagenet: PretrainedCheckpoint
    ade20k_miou: float | None = None
    coco_retinanet_ap: float | None = None


_NARROW = {"embed_dims": (32, 64, 160, 256)}
_WIDE = {"embed_dims": (64, 128, 320, 512)}
_COMMON = {
    "num_heads": (1, 2, 5, 8),
    "mlp_ratios": (8, 8, 4, 4),
    "sr_ratios": (8, 4, 2, 1),
    "qkv_bias": True,
}


# The PVT-v2 paper's Semantic FPN results on ADE20K val (40k iterations, 512x512), in %.
_ADE20K_MIOU = {"b0": 37.2, "b1": 42.5, "b2": 45.2, "b3": 47.3, "b4": 47.9, "b5": 48.7}
# Its RetinaNet 1x results on COCO val2017 (box AP, %).
_COCO_RETINANET_AP = {
    "b0": 37.2,
    "b1": 41.2,
    "b2": 44.6,
    "b2_li": 43.6,
    "b3": 45.9,
    "b4": 46.1,
    "b5": 46.2,
}


def _variant(name: str, config: PVTV2Config, drop_path_rate: float, sha256: str | None) -> Variant:
    """A variant whose ImageNet weights are timm's safetensors release on the Hugging Face Hub."""
    hub = PretrainedCheckpoint(_HUB.format(name), sha256, f"pvt_v2_{name}.in1k.safetensors")
    return Variant(config, drop_path_rate, hub, _ADE20K_MIOU.get(name), _COCO_RETINANET_AP.get(name))


# sha256 values are the Git LFS object ids the Hub publishes for these files. b3, b4 and b2_li are
# not pinned yet: their download is accepted with a warning that prints the hash to check.
VARIANTS: dict[str, Variant] = {
    "b0": _variant(
        "b0",
        PVTV2Config(**_COMMON, **_NARROW, depths=(2, 2, 2, 2)),
        0.1,
        "d0927f8c963fa7ae1ca6cd459449a076a954c561245ca6025103fceffd2df34c",
    ),
    "b1": _variant(
        "b1",
        PVTV2Config(**_COMMON, **_WIDE, depths=(2, 2, 2, 2)),
        0.1,
        "0cb38d3df58e50bb591e99ded2a1a2a02bc807415e9bed4d4076428239112caa",
    ),
    "b2": _variant(
        "b2",
        PVTV2Config(**_COMMON, **_WIDE, depths=(3, 4, 6, 3)),
        0.1,
        "0bff520d64b91bdbb35f2b5bff2b62d35a9d9c6d6a5056e683f1e7ce556d0e5e",
    ),
    "b2_li": _variant("b2_li", PVTV2Config(**_COMMON, **_WIDE, depths=(3, 4, 6, 3), linear=True), 0.1, None),
    "b3": _variant("b3", PVTV2Config(**_COMMON, **_WIDE, depths=(3, 4, 18, 3)), 0.3, None),
    "b4": _variant("b4", PVTV2Config(**_COMMON, **_WIDE, depths=(3, 8, 27, 3)), 0.3, None),
    "b5": _variant(
        "b5",
        PVTV2Config(**{**_COMMON, "mlp_ratios": (4, 4, 4, 4)}, **_WIDE, depths=(3, 6, 40, 3)),
        0.3,
        "070ea6f6e2b9c06fa8dc9ba943c04d5fb74df01f2cb328d95ae65c94c304176b",
    ),
}

PRESETS: dict[str, PVTV2Config] = {name: variant.config for name, variant in VARIANTS.items()}
# The name -> drop_path_rate view, for callers that predate `VARIANTS`.
DEFAULT_DROP_PATH: dict[str, float] = {name: variant.drop_path_rate for name, variant in VARIANTS.items()}


def canonical_variant(variant: str) -> str:
    """Normalised preset key ("pvt_v2_b2_li", "PVTV2-B2-Li" -> "b2_li"); ValueError if unknown."""
    key = variant.lower().replace("-", "_").removeprefix("pvt_v2").removeprefix("pvtv2").lstrip("_")
    if key not in VARIANTS:
        raise ValueError(f"Unknown PVT-v2 variant {variant!r}; choose one of {sorted(VARIANTS)}.")
    return key


def get_config(variant: str) -> PVTV2Config:
    """The preset config for `variant` (e.g. "b0", "pvt_v2_b2_li")."""
    return VARIANTS[canonical_variant(variant)].config
