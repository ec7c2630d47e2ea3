"""Resolving the `weights=` argument of the builders: None, "imagenet", or a checkpoint path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from keras_pvt.config import PVTV2Config

IMAGENET_CLASSES = 1000
# Fields that do not change the weights: a config differing only in these still fits a preset.
_FREE_FIELDS = ("img_size", "num_classes", "drop_rate", "attn_drop_rate", "drop_path_rate")


def load_weights(
    model: Any, weights: str | os.PathLike, config: PVTV2Config, variant: str | None = None
) -> None:
    """Load `weights` into `model` (built from `config`, preset `variant` if it came from one).

    * ``"imagenet"``: the public ImageNet-1k checkpoint of the preset (downloaded once, cached,
      hash-checked; see `keras_pvt.pretrained`). Needs a preset architecture and, with a classifier,
      1000 classes.
    * a path to ``.safetensors`` / ``.pth`` / ``.pt`` / ``.bin`` / ``.npz`` (official, timm or HF
      naming; see `keras_pvt.checkpoints`) or to a Keras ``.weights.h5`` / ``.keras`` file.
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

    try:
        model.load_weights(os.fspath(path))
    except ValueError as error:
        raise ValueError(
            f"The Keras weights {str(path)!r} do not fit model {model.name!r}: {error} Build the "
            "same architecture (variant, include_top, classes) that saved them."
        ) from error
    except OSError as error:
        raise CheckpointReadError(
            f"Cannot read {str(path)!r} as a Keras weights file: it is truncated or corrupt "
            f"({error}). Save or download it again."
        ) from error
