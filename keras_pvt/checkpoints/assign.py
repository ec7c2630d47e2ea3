"""Write a canonical (PyTorch-layout) state dict into a keras-pvt model, or explain why not.

Layouts: conv kernels (O, I, kh, kw) -> (kh, kw, I, O); depthwise kernels (C, 1, kh, kw) ->
(kh, kw, C, 1); dense weights (out, in) -> (in, out); biases and LayerNorm scale/shift unchanged.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

REPORT_FIRST = 5


def _conv(value: np.ndarray) -> np.ndarray:
    return value.transpose(2, 3, 1, 0)


def _depthwise(value: np.ndarray) -> np.ndarray:
    return value.transpose(2, 3, 0, 1)


def _dense(value: np.ndarray) -> np.ndarray:
    return value.T


def _same(value: np.ndarray) -> np.ndarray:
    return value


# Inverse layouts, to state the PyTorch shape each Keras variable expects.
_TORCH_SHAPE: dict[Callable, Callable[[tuple], tuple]] = {
    _conv: lambda s: (s[3], s[2], s[0], s[1]),
    _depthwise: lambda s: (s[2], s[3], s[0], s[1]),
    _dense: lambda s: (s[1], s[0]),
    _same: lambda s: tuple(s),
}


@dataclasses.dataclass
class Target:
    """One Keras variable and how to convert its PyTorch tensor."""

    variable: Any
    convert: Callable[[np.ndarray], np.ndarray]

    @property
    def torch_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in _TORCH_SHAPE[self.convert](tuple(self.variable.shape)))


class CheckpointMismatchError(ValueError):
    """The checkpoint's tensors do not fit the model: missing, unexpected or mis-shaped keys."""

    def __init__(
        self,
        missing: list[str],
        unexpected: list[str],
        mismatched: list[tuple[str, tuple, tuple]],
        hint: str = "",
    ) -> None:
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        lines = ["The checkpoint does not match the model."]
        if hint:
            lines.append(hint)
        lines += _section("missing from the checkpoint", missing)
        lines += _section("unexpected in the checkpoint", unexpected)
        lines += _section(
            "with the wrong shape (checkpoint vs model, PyTorch layout)",
            [f"{name}: {got} vs {want}" for name, got, want in mismatched],
        )
        super().__init__("\n".join(lines))


def _section(title: str, items: list[str]) -> list[str]:
    if not items:
        return []
    shown = [f"    {item}" for item in items[:REPORT_FIRST]]
    more = len(items) - REPORT_FIRST
    tail = [f"    ... and {more} more"] if more > 0 else []
    return [f"  {len(items)} key(s) {title}:", *shown, *tail]


def model_targets(model: Any) -> dict[str, Target]:
    """Canonical name -> `Target` for every weight of a keras-pvt model (stages and head)."""
    targets: dict[str, Target] = {}
    stage_index = 1
    while True:
        try:
            stage = model.get_layer(f"stage{stage_index}")
        except ValueError:
            break
        prefix = f"stage{stage_index}"
        _conv_layer(targets, f"{prefix}.patch_embed.proj", stage.patch_embed.proj, _conv)
        _norm(targets, f"{prefix}.patch_embed.norm", stage.patch_embed.norm)
        for j, block in enumerate(stage.blocks):
            name = f"{prefix}.block{j}"
            _norm(targets, f"{name}.norm1", block.norm1)
            attn = block.attn
            for part in ("q", "kv", "proj"):
                _conv_layer(targets, f"{name}.attn.{part}", getattr(attn, part), _dense)
            if attn.sr is not None:
                _conv_layer(targets, f"{name}.attn.sr", attn.sr, _conv)
            if attn.norm is not None:
                _norm(targets, f"{name}.attn.norm", attn.norm)
            _norm(targets, f"{name}.norm2", block.norm2)
            _conv_layer(targets, f"{name}.mlp.fc1", block.mlp.fc1, _dense)
            _conv_layer(targets, f"{name}.mlp.dwconv", block.mlp.dwconv, _depthwise)
            _conv_layer(targets, f"{name}.mlp.fc2", block.mlp.fc2, _dense)
        _norm(targets, f"{prefix}.norm", stage.norm)
        stage_index += 1
    if stage_index == 1:
        raise ValueError(
            f"Model {getattr(model, 'name', model)!r} has no layer 'stage1': checkpoints load only "
            "into models built by keras_pvt (PVT_V2 or PVTV2B0 ... PVTV2B5)."
        )
    head = _head_layer(model)
    if head is not None:
        _conv_layer(targets, "head", head, _dense)
    return targets


def _head_layer(model: Any) -> Any:
    try:
        return model.get_layer("head")
    except ValueError:
        return None


def _conv_layer(targets: dict[str, Target], name: str, layer: Any, convert: Callable) -> None:
    targets[f"{name}.weight"] = Target(layer.kernel, convert)
    if getattr(layer, "bias", None) is not None:
        targets[f"{name}.bias"] = Target(layer.bias, _same)


def _norm(targets: dict[str, Target], name: str, layer: Any) -> None:
    targets[f"{name}.weight"] = Target(layer.gamma, _same)
    targets[f"{name}.bias"] = Target(layer.beta, _same)


def assign_state_dict(
    model: Any,
    state: Mapping[str, np.ndarray],
    *,
    head: str = "auto",
    hint: str = "",
) -> dict[str, list[str]]:
    """Copy the canonical `state` into `model`, all or nothing.

    Args:
        model: a keras-pvt model (layers "stage1".. and optionally "head").
        state: canonical state dict (see `keymaps`), PyTorch layouts.
        head: "auto": load the classifier when its shape fits, otherwise leave the model's head as
            initialised and warn (another class count, or a checkpoint without a head);
            "require": a missing or mis-shaped head is an error like any other key.
        hint: extra sentence for the mismatch error (e.g. which variant the checkpoint looks like).

    Returns ``{"loaded": [...], "skipped": [...]}`` (canonical names). Raises
    `CheckpointMismatchError` listing every missing, unexpected and mis-shaped key before any
    variable is written.
    """
    if head not in ("auto", "require"):
        raise ValueError(f"`head` must be 'auto' or 'require', got {head!r}.")
    targets = model_targets(model)
    state = dict(state)
    skipped: list[str] = []
    has_head = "head.weight" in targets
    head_keys = [k for k in state if k.startswith("head.")]
    if not has_head:
        skipped += head_keys  # include_top=False / features_only: the classifier is not needed
        for key in head_keys:
            del state[key]
    head_note = ""
    if has_head and head == "auto":
        fits = all(
            key in state and tuple(state[key].shape) == targets[key].torch_shape
            for key in ("head.weight", "head.bias")
            if key in targets
        )
        if not fits:
            got = tuple(state["head.weight"].shape) if "head.weight" in state else None
            head_note = (
                "The checkpoint's classifier "
                + (f"has shape {got}" if got else "is absent")
                + f"; the model's head {targets['head.weight'].torch_shape} keeps its initial "
                "weights (train it, or build with include_top=False)."
            )
            skipped += [k for k in targets if k.startswith("head.")] + head_keys
            for key in head_keys:
                del state[key]
            targets = {k: v for k, v in targets.items() if not k.startswith("head.")}

    missing = [k for k in targets if k not in state]
    unexpected = [k for k in state if k not in targets]
    mismatched = [
        (k, tuple(int(d) for d in state[k].shape), targets[k].torch_shape)
        for k in targets
        if k in state and tuple(state[k].shape) != targets[k].torch_shape
    ]
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(missing, unexpected, mismatched, hint)
    if head_note:
        warnings.warn(head_note, stacklevel=3)
    for key, target in targets.items():
        value = target.convert(np.asarray(state[key], dtype=np.float32))
        target.variable.assign(value.astype(target.variable.dtype))
    return {"loaded": list(targets), "skipped": skipped}
