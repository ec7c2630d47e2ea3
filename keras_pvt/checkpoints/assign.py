"""Write PyTorch-layout tensors into Keras variables through a key map, or explain why not.

The generic steps every model shares (`check_fit`, `float32_values`, `assign_values`), and the
PVT-v2's own key map (`model_targets`, canonical names) with its loader `assign_state_dict`.
Layouts: conv kernels (O, I, kh, kw) -> (kh, kw, I, O); depthwise kernels (C, 1, kh, kw) ->
(kh, kw, C, 1); dense weights (out, in) -> (in, out); biases, norms and BatchNorm statistics unchanged.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from keras_pvt.checkpoints.errors import REPORT_FIRST as REPORT_FIRST
from keras_pvt.checkpoints.errors import CheckpointMismatchError, CheckpointValueError
from keras_pvt.images import RGB_CHANNELS

# Integer bookkeeping buffers some PyTorch modules keep next to their weights (BatchNorm's step
# counter); they hold no weights of the model and are skipped wherever they appear.
BOOKKEEPING_SUFFIXES = (".num_batches_tracked",)
# Float dtypes NumPy knows natively or through ml_dtypes (registered by TensorFlow).
_EXTRA_FLOATS = ("bfloat16", "float8")
# The first layer (stage 1's patch embedding): the only weight whose shape depends on the input's
# channel count. Pretrained checkpoints take RGB; other counts get it through `adapt_input_conv`.
FIRST_KERNEL = "stage1.patch_embed.proj.weight"


def adapt_input_conv(kernel: np.ndarray, channels: int, axis: int = 1) -> np.ndarray:
    """An RGB first-layer kernel adapted to `channels` inputs by timm's rule (`adapt_input_conv`).

    1 channel: the sum of the three RGB kernels (a grey image x answers like the RGB image (x, x, x)).
    Any other count: the RGB kernels repeated cyclically (R, G, B, R, ...) over the `channels`
    inputs and scaled by 3 / `channels`, which keeps the size of the response. `axis` is the
    input-channel axis: 1 in PyTorch's (O, I, kh, kw), 2 in Keras' (kh, kw, I, O). Float32 out.
    """
    kernel = np.asarray(kernel, dtype=np.float32)
    if kernel.ndim != 4 or kernel.shape[axis] != RGB_CHANNELS or channels < 1:
        raise ValueError(
            f"adapt_input_conv takes a 4-D kernel with {RGB_CHANNELS} input channels on axis {axis} "
            f"and a positive channel count; got shape {kernel.shape} and channels={channels}."
        )
    if channels == RGB_CHANNELS:
        return kernel
    if channels == 1:
        return kernel.sum(axis=axis, keepdims=True)
    repeated = np.concatenate([kernel] * math.ceil(channels / RGB_CHANNELS), axis=axis)
    return np.take(repeated, np.arange(channels), axis=axis) * np.float32(RGB_CHANNELS / channels)


def input_adapted_message(channels: int) -> str:
    """The warning given when an RGB checkpoint's first layer is adapted to `channels` inputs."""
    rule = (
        "the sum of its RGB kernels"
        if channels == 1
        else f"its R, G, B kernels taken in turn for the {channels} channels, scaled by 3/{channels}"
    )
    return (
        f"The checkpoint's first layer (stage1 patch embedding) was made for {RGB_CHANNELS}-channel "
        f"RGB images; adapted it from {RGB_CHANNELS} to the model's {channels} input channels "
        f"(timm's rule: {rule}). Fine-tune the model on your {channels}-channel images."
    )


def conv_kernel(value: np.ndarray) -> np.ndarray:
    """A PyTorch conv kernel (O, I, kh, kw) in Keras' layout (kh, kw, I, O)."""
    return value.transpose(2, 3, 1, 0)


def depthwise_kernel(value: np.ndarray) -> np.ndarray:
    """A PyTorch depthwise kernel (C, 1, kh, kw) in Keras' layout (kh, kw, C, 1)."""
    return value.transpose(2, 3, 0, 1)


def dense_kernel(value: np.ndarray) -> np.ndarray:
    """A PyTorch linear weight (out, in) in Keras' layout (in, out)."""
    return value.T


def unchanged(value: np.ndarray) -> np.ndarray:
    """Biases, norm scales and shifts, BatchNorm statistics: the same in both frameworks."""
    return value


# Inverse layouts, to state the PyTorch shape each Keras variable expects.
_TORCH_SHAPE: dict[Callable, Callable[[tuple], tuple]] = {
    conv_kernel: lambda s: (s[3], s[2], s[0], s[1]),
    depthwise_kernel: lambda s: (s[2], s[3], s[0], s[1]),
    dense_kernel: lambda s: (s[1], s[0]),
    unchanged: lambda s: tuple(s),
}


@dataclasses.dataclass
class Target:
    """One Keras variable and how to convert its PyTorch tensor (one of the layouts above).

    A key map is ``{checkpoint name: Target}``: `model_targets` for the backbone; a head (the
    segmenter's `keras_pvt.segmentation.checkpoint_keys`) writes its own with `add_layer`.
    """

    variable: Any
    convert: Callable[[np.ndarray], np.ndarray]

    @property
    def torch_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in _TORCH_SHAPE[self.convert](tuple(self.variable.shape)))


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
        add_layer(targets, f"{prefix}.patch_embed.proj", stage.patch_embed.proj, conv_kernel)
        _norm(targets, f"{prefix}.patch_embed.norm", stage.patch_embed.norm)
        for j, block in enumerate(stage.blocks):
            name = f"{prefix}.block{j}"
            _norm(targets, f"{name}.norm1", block.norm1)
            attn = block.attn
            for part in ("q", "kv", "proj"):
                add_layer(targets, f"{name}.attn.{part}", getattr(attn, part), dense_kernel)
            if attn.sr is not None:
                add_layer(targets, f"{name}.attn.sr", attn.sr, conv_kernel)
            if attn.norm is not None:
                _norm(targets, f"{name}.attn.norm", attn.norm)
            _norm(targets, f"{name}.norm2", block.norm2)
            add_layer(targets, f"{name}.mlp.fc1", block.mlp.fc1, dense_kernel)
            add_layer(targets, f"{name}.mlp.dwconv", block.mlp.dwconv, depthwise_kernel)
            add_layer(targets, f"{name}.mlp.fc2", block.mlp.fc2, dense_kernel)
        _norm(targets, f"{prefix}.norm", stage.norm)
        stage_index += 1
    if stage_index == 1:
        raise ValueError(
            f"Model {getattr(model, 'name', model)!r} has no layer 'stage1': checkpoints load only "
            "into models built by keras_pvt (PVT_V2 or PVTV2B0 ... PVTV2B5)."
        )
    head = _head_layer(model)
    if head is not None:
        add_layer(targets, "head", head, dense_kernel)
    return targets


def _head_layer(model: Any) -> Any:
    try:
        return model.get_layer("head")
    except ValueError:
        return None


def add_layer(targets: dict[str, Target], name: str, layer: Any, convert: Callable) -> None:
    """Add ``{name}.weight`` (the layer's kernel, in layout `convert`) and ``{name}.bias`` if it has one."""
    targets[f"{name}.weight"] = Target(layer.kernel, convert)
    if getattr(layer, "bias", None) is not None:
        targets[f"{name}.bias"] = Target(layer.bias, unchanged)


def _norm(targets: dict[str, Target], name: str, layer: Any) -> None:
    targets[f"{name}.weight"] = Target(layer.gamma, unchanged)
    targets[f"{name}.bias"] = Target(layer.beta, unchanged)


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

    An RGB checkpoint loads into a model built for another channel count: its first kernel is
    adapted by `adapt_input_conv`, with a warning.

    Returns ``{"loaded": [...], "skipped": [...], "adapted": [...]}`` (canonical names; integer
    bookkeeping buffers such as ``*.num_batches_tracked`` are skipped). Raises
    `CheckpointMismatchError` listing every missing, unexpected and mis-shaped key, and
    `CheckpointValueError` listing tensors that are not floating point or not finite, before any
    variable is written.
    """
    if head not in ("auto", "require"):
        raise ValueError(f"`head` must be 'auto' or 'require', got {head!r}.")
    targets = model_targets(model)
    state, skipped = without_bookkeeping(state)
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

    adapt_to = _channels_to_adapt(state, targets)
    check_fit(state, targets, hint, first_kernel_adapted=adapt_to is not None)
    values = float32_values(state, targets)
    if adapt_to:
        values[FIRST_KERNEL] = adapt_input_conv(values[FIRST_KERNEL], adapt_to)
        warnings.warn(input_adapted_message(adapt_to), stacklevel=3)
    if head_note:
        warnings.warn(head_note, stacklevel=3)
    assign_values(targets, values)
    return {"loaded": list(targets), "skipped": skipped, "adapted": [FIRST_KERNEL] if adapt_to else []}


def without_bookkeeping(state: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(`state` without its integer bookkeeping buffers, the names of those skipped)."""
    kept = {key: value for key, value in state.items() if not key.endswith(BOOKKEEPING_SUFFIXES)}
    return kept, [key for key in state if key not in kept]


def check_fit(
    state: Mapping[str, Any],
    targets: Mapping[str, Target],
    hint: str = "",
    *,
    first_kernel_adapted: bool = False,
) -> None:
    """`CheckpointMismatchError` listing the missing, unexpected and mis-shaped keys of a key map, if any."""
    missing = [k for k in targets if k not in state]
    unexpected = [k for k in state if k not in targets]
    mismatched = [
        (k, tuple(int(d) for d in np.shape(state[k])), targets[k].torch_shape)
        for k in targets
        if k in state
        and tuple(np.shape(state[k])) != targets[k].torch_shape
        and not (k == FIRST_KERNEL and first_kernel_adapted)
    ]
    if missing or unexpected or mismatched:
        hint = " ".join(filter(None, [hint, _first_layer_hint(state, targets)]))
        raise CheckpointMismatchError(missing, unexpected, mismatched, hint)


def _input_channels(state: Mapping[str, Any], targets: Mapping[str, Target]) -> tuple[int, int] | None:
    """(checkpoint's, model's) input channels when the first kernels differ in nothing else."""
    if FIRST_KERNEL not in state or FIRST_KERNEL not in targets:
        return None
    got, want = tuple(int(d) for d in state[FIRST_KERNEL].shape), targets[FIRST_KERNEL].torch_shape
    if len(got) != 4 or got[1] == want[1] or (got[0], *got[2:]) != (want[0], *want[2:]):
        return None
    return got[1], want[1]


def _channels_to_adapt(state: Mapping[str, Any], targets: Mapping[str, Target]) -> int | None:
    """The model's channel count when the checkpoint's first kernel is RGB and the model's is not."""
    channels = _input_channels(state, targets)
    return channels[1] if channels is not None and channels[0] == RGB_CHANNELS else None


def _first_layer_hint(state: Mapping[str, Any], targets: Mapping[str, Target]) -> str:
    """A sentence when the first kernels differ only in their (non-RGB) input channels."""
    channels = _input_channels(state, targets)
    if channels is None:
        return ""
    got, want = channels
    return (
        f"The checkpoint's first layer takes {got}-channel images and the model {want}-channel "
        f"ones; only {RGB_CHANNELS}-channel (RGB) checkpoints are adapted to another channel "
        f"count. Build the model with input_shape=(None, None, {got}) for this checkpoint."
    )


def _is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f" or dtype.name.startswith(_EXTRA_FLOATS)


def non_finite_entry(key: str, value: np.ndarray) -> str | None:
    """``"key (2 NaN, 1 inf)"`` when the float array `value` holds NaN or infinite values, else None.

    The one test of finite weights, shared by every format that loads weights (checkpoints, Keras
    weight files, preset folders).
    """
    finite = np.isfinite(value)
    if finite.all():
        return None
    nan = int(np.isnan(value).sum())
    return f"{key} ({nan} NaN, {value.size - nan - int(finite.sum())} inf)"


def float32_values(state: Mapping[str, Any], targets: Mapping[str, Target]) -> dict[str, np.ndarray]:
    """The float32 value of every target, or `CheckpointValueError` for non-float or non-finite ones."""
    values: dict[str, np.ndarray] = {}
    not_float: list[str] = []
    not_finite: list[str] = []
    for key in targets:
        value = np.asarray(state[key])
        if not _is_float(value.dtype):
            not_float.append(f"{key} ({value.dtype.name})")
            continue
        with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf: reported
            value = value.astype(np.float32, copy=False)
        entry = non_finite_entry(key, value)
        if entry is not None:
            not_finite.append(entry)
        values[key] = value
    if not_float or not_finite:
        raise CheckpointValueError(not_float, not_finite)
    return values


def assign_values(targets: Mapping[str, Target], values: Mapping[str, np.ndarray]) -> None:
    """Write each checked float32 value (`float32_values`) into its variable, in Keras' layout."""
    for key, target in targets.items():
        target.variable.assign(target.convert(values[key]).astype(target.variable.dtype))
