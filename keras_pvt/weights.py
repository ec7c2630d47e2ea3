"""Resolving the `weights=` argument of the builders: None, "imagenet", or a checkpoint path."""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_pvt.checkpoints.assign import RGB_CHANNELS, adapt_input_conv, input_adapted_message
from keras_pvt.config import PVTV2Config

IMAGENET_CLASSES = 1000
# Fields that do not change the weights: a config differing only in these still fits a preset
# (`in_channels`: the RGB checkpoint's first layer is adapted to the model's channel count).
_FREE_FIELDS = ("img_size", "in_channels", "num_classes", "drop_rate", "attn_drop_rate", "drop_path_rate")


def load_weights(
    model: Any, weights: str | os.PathLike, config: PVTV2Config, variant: str | None = None
) -> None:
    """Load `weights` into `model` (built from `config`, preset `variant` if it came from one).

    * ``"imagenet"``: the public ImageNet-1k checkpoint of the preset (downloaded once, cached,
      hash-checked; see `keras_pvt.pretrained`). Needs a preset architecture and, with a classifier,
      1000 classes.
    * a path to ``.safetensors`` / ``.pth`` / ``.pt`` / ``.bin`` / ``.npz`` (official, timm or HF
      naming; see `keras_pvt.checkpoints`) or to a Keras ``.weights.h5`` / ``.keras`` file.

    A model built for another channel count than 3 takes RGB weights of every source: the first
    layer's kernel is adapted by timm's rule (`keras_pvt.checkpoints.assign.adapt_input_conv`),
    with a warning.
    """
    if isinstance(weights, str) and weights == "imagenet":
        _load_imagenet(model, config, variant)
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"`weights` must be None, 'imagenet' or a file path, got {weights!r}.")
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights={os.fspath(weights)!r}: no such file. Pass None, 'imagenet', or the path of a "
            "checkpoint (.safetensors, .pth, .pt, .bin, .npz, .weights.h5, .keras)."
        )
    from keras_pvt.checkpoints import checkpoint_format, load_checkpoint

    if checkpoint_format(path) == "keras":
        _load_keras_file(model, path)
    else:
        load_checkpoint(model, path, config=config)


def _load_imagenet(model: Any, config: PVTV2Config, variant: str | None) -> None:
    from keras_pvt import pretrained
    from keras_pvt.checkpoints import load_checkpoint

    if config.num_classes not in (0, IMAGENET_CLASSES):
        raise ValueError(
            f"weights='imagenet' with include_top=True needs classes={IMAGENET_CLASSES}, got "
            f"classes={config.num_classes}. Use include_top=False (and add your own head), or "
            "weights=None."
        )
    name = variant or preset_of(config)
    if name is None:
        raise ValueError(
            "weights='imagenet' needs one of the preset architectures (b0 ... b5, b2_li); this "
            "config matches none. Build from a preset name, or pass a checkpoint path or None."
        )
    load_checkpoint(model, pretrained.fetch(name), config=config, head="require")


def preset_of(config: PVTV2Config) -> str | None:
    """The preset `config` equals, ignoring fields that do not affect weights (size, rates, head)."""
    from keras_pvt.presets import PRESETS

    def core(c: PVTV2Config) -> dict[str, Any]:
        return {k: v for k, v in c.to_dict().items() if k not in _FREE_FIELDS}

    return next((name for name, preset in PRESETS.items() if core(preset) == core(config)), None)


def _load_keras_file(model: Any, path: Path) -> None:
    from keras_pvt.checkpoints import CheckpointReadError

    kind = "Keras model (.keras)" if path.name.lower().endswith(".keras") else "Keras weights (.weights.h5)"
    if not _has_keras_signature(path):
        raise CheckpointReadError(
            f"{str(path)!r} is not a {kind} file: "
            + ("it is not a zip archive" if kind.endswith("(.keras)") else "it is not an HDF5 file")
            + " (truncated, corrupt or another format under that name). Save or download it again."
        )
    try:
        _load_keras_weights(model, path)
    except ValueError as error:
        raise ValueError(
            f"The Keras weights {str(path)!r} do not fit model {model.name!r}: {error} Build the "
            "same architecture (variant, include_top, classes) that saved them."
        ) from error
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise CheckpointReadError(
            f"Cannot read {str(path)!r} as a {kind} file: it is truncated or corrupt "
            f"({type(error).__name__}: {error}). Save or download it again."
        ) from error


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


def _has_keras_signature(path: Path) -> bool:
    """A `.keras` file is a zip archive, a `.weights.h5` file an HDF5 file."""
    if path.name.lower().endswith(".keras"):
        return zipfile.is_zipfile(path)
    import h5py  # a dependency of Keras

    return bool(h5py.is_hdf5(os.fspath(path)))
