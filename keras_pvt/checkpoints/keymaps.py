"""Naming schemes of PVT-v2 checkpoints and their translation to one canonical scheme.

Three schemes exist in the wild:
  * "official" (whai362/PVT): ``patch_embed1.proj.weight``, ``block1.0.attn.kv.weight``,
    ``block1.0.mlp.dwconv.dwconv.weight``, ``norm1.weight``, ``head.weight``;
  * "timm": ``patch_embed.proj.weight``, ``stages.1.downsample.proj.weight``,
    ``stages.0.blocks.0.attn.kv.weight``, ``stages.0.norm.weight``, ``head.weight``;
  * "hf" (transformers `PvtV2Model` / `PvtV2ForImageClassification`):
    ``pvt_v2.encoder.layers.0.patch_embedding.proj.weight``, ``...blocks.0.attention.query.weight``
    (key and value are separate), ``layer_norm_1``, ``mlp.dense1``, ``classifier.weight``.

The canonical scheme follows the Keras model's own layer names, stages counted from 1, tensors still
in PyTorch layout: ``stage1.patch_embed.proj.weight``, ``stage1.block0.attn.kv.weight``,
``stage1.block0.mlp.dwconv.weight``, ``stage1.norm.weight``, ``head.weight``. Keys that match no rule
are kept unchanged, so they show up as "unexpected" in a mismatch report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

SCHEMES = ("official", "timm", "hf", "canonical")

# Anchor key (without any wrapper prefix) that identifies each scheme.
_ANCHORS = {
    "official": re.compile(r"^(.*?)patch_embed1\.proj\.weight$"),
    "timm": re.compile(r"^(.*?)patch_embed\.proj\.weight$"),
    "hf": re.compile(r"^(.*?)encoder\.layers\.0\.patch_embedding\.proj\.weight$"),
    "canonical": re.compile(r"^(.*?)stage1\.patch_embed\.proj\.weight$"),
}

_BLOCK_PARTS_HF = {
    "layer_norm_1": "norm1",
    "layer_norm_2": "norm2",
    "attention.query": "attn.q",
    "attention.proj": "attn.proj",
    "attention.spatial_reduction": "attn.sr",
    "attention.layer_norm": "attn.norm",
    "mlp.dense1": "mlp.fc1",
    "mlp.dense2": "mlp.fc2",
    "mlp.dwconv.dwconv": "mlp.dwconv",
}


def detect_scheme(state: Mapping[str, object]) -> tuple[str, str]:
    """``(scheme, prefix)`` of a state dict; the prefix is a wrapper such as "module." or "pvt_v2.".

    Raises ValueError naming a few of the keys when no PVT-v2 scheme is recognised.
    """
    for scheme in ("hf", "official", "canonical", "timm"):
        for key in state:
            match = _ANCHORS[scheme].match(key)
            if match and not (scheme == "timm" and re.search(r"(stage\d+|patch_embed\d)\.", key)):
                return scheme, match.group(1)
    sample = ", ".join(sorted(state)[:6])
    raise ValueError(
        "This does not look like a PVT-v2 checkpoint: no first patch-embedding weight in any known "
        "naming (official `patch_embed1.proj.weight`, timm `patch_embed.proj.weight`, HF "
        f"`encoder.layers.0.patch_embedding.proj.weight`). First keys: {sample or '(none)'}."
    )


def to_canonical(
    state: Mapping[str, np.ndarray], scheme: str | None = None
) -> tuple[dict[str, np.ndarray], str]:
    """The state dict renamed to the canonical scheme, and the scheme it was detected as."""
    prefix = ""
    if scheme is None:
        scheme, prefix = detect_scheme(state)
    elif scheme not in SCHEMES:
        raise ValueError(f"Unknown naming scheme {scheme!r}; choose one of {SCHEMES}.")
    stripped = {
        (key[len(prefix) :] if prefix and key.startswith(prefix) else key): value
        for key, value in state.items()
    }
    rename = {"official": _official, "timm": _timm, "hf": _hf, "canonical": lambda k: k}[scheme]
    out: dict[str, np.ndarray] = {}
    for key, value in stripped.items():
        out[rename(key)] = value
    if scheme == "hf":
        out = _merge_key_value(out)
    return out, scheme


def _official(key: str) -> str:
    key = re.sub(r"^patch_embed(\d+)\.", r"stage\1.patch_embed.", key)
    key = re.sub(r"^block(\d+)\.(\d+)\.", r"stage\1.block\2.", key)
    key = re.sub(r"^norm(\d+)\.", r"stage\1.norm.", key)
    return key.replace(".mlp.dwconv.dwconv.", ".mlp.dwconv.")


def _timm(key: str) -> str:
    key = re.sub(r"^patch_embed\.", "stage1.patch_embed.", key)
    key = re.sub(r"^stages\.(\d+)\.downsample\.", lambda m: f"stage{int(m[1]) + 1}.patch_embed.", key)
    key = re.sub(r"^stages\.(\d+)\.blocks\.(\d+)\.", lambda m: f"stage{int(m[1]) + 1}.block{m[2]}.", key)
    return re.sub(r"^stages\.(\d+)\.norm\.", lambda m: f"stage{int(m[1]) + 1}.norm.", key)


def _hf(key: str) -> str:
    if key.startswith("classifier."):
        return "head." + key[len("classifier.") :]
    match = re.match(r"^encoder\.layers\.(\d+)\.(.*)$", key)
    if not match:
        return key
    stage, rest = f"stage{int(match[1]) + 1}", match[2]
    rest = re.sub(r"^patch_embedding\.layer_norm\.", "patch_embed.norm.", rest)
    rest = re.sub(r"^patch_embedding\.", "patch_embed.", rest)
    rest = re.sub(r"^layer_norm\.", "norm.", rest)
    block = re.match(r"^blocks\.(\d+)\.(.*)\.(weight|bias)$", rest)
    if block:
        part = _BLOCK_PARTS_HF.get(block[2], block[2])
        rest = f"block{block[1]}.{part}.{block[3]}"
    return f"{stage}.{rest}"


def _merge_key_value(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """HF keeps keys and values apart; the model's `kv` projection is ``[keys | values]``."""
    out = dict(state)
    for name in list(state):
        if ".attention.key." not in name:
            continue
        value_name = name.replace(".attention.key.", ".attention.value.")
        if value_name not in state:
            continue
        merged = name.replace(".attention.key.", ".attn.kv.")
        out[merged] = np.concatenate([state[name], state[value_name]], axis=0)
        del out[name], out[value_name]
    return out
