"""The builders' `weights=` argument: None, "imagenet", a checkpoint path or a state dict.

`load_weights` is the one way weights get into a keras-pvt model: the builders (`PVT_V2`,
`PVTV2B0` ... `PVTV2B5`), `keras_pvt.from_checkpoint` and the CLI go through it. To fine-tune
into a new classifier, build the model with its own class count and call
``load_weights(model, weights, config=config, variant=name, head="auto")``: the backbone loads
from "imagenet" or any PyTorch checkpoint and the classifier keeps its initial weights.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_pvt import pretrained
from keras_pvt.checkpoints.assign import adapt_input_conv, input_adapted_message
from keras_pvt.checkpoints.keras_files import load_keras_file
from keras_pvt.checkpoints.load import load_checkpoint
from keras_pvt.checkpoints.readers import checkpoint_format
from keras_pvt.checkpoints.variant import preset_of
from keras_pvt.config import PVTV2Config
from keras_pvt.imagenet import IMAGENET_CLASSES
from keras_pvt.images import RGB_CHANNELS

__all__ = ["check_weights", "load_weights", "preset_of"]

Weights = str | os.PathLike | Mapping[str, np.ndarray]


def check_weights(
    weights: Weights | None, config: PVTV2Config, variant: str | None = None, *, head: str | None = None
) -> None:
    """Refuse a `weights` argument that cannot fit a model of `config`, before the model is built.

    ``"imagenet"`` needs a preset architecture and, when its classifier must load (``head`` None
    or "require"), 1000 classes or no classifier; a path must be an existing file.
    """
    if weights is None or isinstance(weights, Mapping):
        return
    if isinstance(weights, str) and weights == "imagenet":
        if head != "auto" and config.num_classes not in (0, IMAGENET_CLASSES):
            raise ValueError(
                f"weights='imagenet' with include_top=True needs classes={IMAGENET_CLASSES}, got "
                f"classes={config.num_classes}. Use include_top=False (and add your own head), or "
                "weights=None."
            )
        if (variant or preset_of(config)) is None:
            raise ValueError(
                "weights='imagenet' needs one of the preset architectures (b0 ... b5, b2_li); this "
                "config matches none. Build from a preset name, or pass a checkpoint path or None."
            )
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"`weights` must be None, 'imagenet', a file path or a state dict, got {weights!r}.")
    if not Path(weights).is_file():
        raise FileNotFoundError(
            f"weights={os.fspath(weights)!r}: no such file. Pass None, 'imagenet', or the path of a "
            "checkpoint (.safetensors, .pth, .pt, .bin, .npz, .weights.h5, .keras)."
        )


def load_weights(
    model: Any,
    weights: Weights,
    config: PVTV2Config,
    variant: str | None = None,
    *,
    head: str | None = None,
) -> None:
    """Load `weights` into `model` (built from `config`, preset `variant` if it came from one).

    * ``"imagenet"``: the public ImageNet-1k checkpoint of the preset (downloaded once, cached,
      hash-checked; see `keras_pvt.pretrained`). Needs a preset architecture and, with a classifier,
      1000 classes (unless ``head="auto"``).
    * a path to ``.safetensors`` / ``.pth`` / ``.pt`` / ``.bin`` / ``.npz`` (official, timm or HF
      naming; see `keras_pvt.checkpoints`) or to a Keras ``.weights.h5`` / ``.keras`` file.
    * a state dict ``{name: array}`` in any of the three namings.

    `head`: "require" (the checkpoint's classifier must fit), "auto" (a classifier of another
    width, or none, leaves the model's as initialised, with a warning) or None: "require" for
    "imagenet", "auto" for checkpoints. Keras files load as saved: their classifier must fit.

    A model built for another channel count than 3 takes RGB weights of every source: the first
    layer's kernel is adapted by timm's rule (`keras_pvt.checkpoints.assign.adapt_input_conv`),
    with a warning.
    """
    check_weights(weights, config, variant, head=head)
    if isinstance(weights, str) and weights == "imagenet":
        name = variant or preset_of(config)
        load_checkpoint(model, pretrained.fetch(name), config=config, head=head or "require")
    elif not isinstance(weights, Mapping) and checkpoint_format(weights) == "keras":
        rebuild = "architecture (variant, include_top, classes)"
        load_keras_file(model, Path(weights), rebuild=rebuild, load=_load_keras_weights)
    else:
        load_checkpoint(model, weights, config=config, head=head or "auto")


def _load_keras_weights(model: Any, path: Path) -> None:
    """`model.load_weights`; for a model of another channel count, also a file saved for RGB input.

    Such a file loads into an RGB twin of `model` (same layers, 3 input channels); its weights then
    go to `model`, the first kernel adapted by `adapt_input_conv`. The first error stands when the
    twin does not take the file either.
    """
    try:
        model.load_weights(os.fspath(path))
    except ValueError as error:
        twin = _rgb_twin(model)
        if twin is None:
            raise
        try:
            twin.load_weights(os.fspath(path))
        except ValueError:
            raise error from None
        _copy_weights_adapting_input(twin, model)


def _rgb_twin(model: Any) -> Any:
    """A copy of `model` taking 3-channel images, or None if `model`'s first layer is RGB already."""
    channels = _first_kernel(model).shape[2]
    if channels == RGB_CHANNELS or len(model.inputs) != 1:
        return None
    shape = (*model.inputs[0].shape[:-1], RGB_CHANNELS)
    rgb_input = keras.Input(batch_shape=shape, dtype=model.inputs[0].dtype)
    try:
        twin = keras.models.clone_model(model, input_tensors=rgb_input)
    except ValueError:  # layers before stage 1 that cannot take 3 channels
        return None
    return twin if _first_kernel(twin).shape[2] == RGB_CHANNELS else None


def _copy_weights_adapting_input(source: Any, model: Any) -> None:
    """Copy every weight of the RGB `source` into its twin `model`, adapting the first kernel."""
    channels = int(_first_kernel(model).shape[2])
    first = _first_kernel(model).path
    values = []
    for theirs, ours in zip(source.weights, model.weights, strict=True):
        value = np.asarray(theirs.numpy())
        if ours.path == first:
            value = adapt_input_conv(value, channels, axis=2)  # Keras layout (kh, kw, I, O)
        values.append(value)
    model.set_weights(values)
    warnings.warn(input_adapted_message(channels), stacklevel=2)


def _first_kernel(model: Any) -> Any:
    return model.get_layer("stage1").patch_embed.proj.kernel
