"""Preset folders: a model as ``config.json`` + ``model.weights.h5`` + ``metadata.json`` (keras-hub's layout).

    keras_pvt.save_to_preset(model, "my_pvt")       # any model keras-pvt builds
    model = keras_pvt.from_preset("my_pvt")          # rebuilt without running code from the folder
    model = keras_pvt.from_preset("b0")              # a named preset: PVTV2B0 with ImageNet weights

``config.json`` is `keras.saving.serialize_keras_object(model)` (without compile and build state),
rebuilt with ``safe_mode=True`` (no lambdas); ``model.weights.h5`` is `model.save_weights`;
``metadata.json`` records the format version, the keras-pvt and Keras versions, the kind of model,
its variant, the class names when given and the date. The folder is written beside and renamed into
place (`keras_pvt._safe_write`). keras-hub is not needed (nor used).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import keras

from keras_pvt._safe_write import MAX_REPORT_BYTES, PRESET, PRESET_FORMAT, staged_output
from keras_pvt.checkpoints.errors import REPORT_FIRST, CheckpointReadError, CheckpointValueError
from keras_pvt.checkpoints.keras_files import READ_ERRORS, check_config_limits, check_finite_weights
from keras_pvt.checkpoints.variant import model_config, preset_of
from keras_pvt.images import takes_raw_pixels
from keras_pvt.input_checks import require_image_batches
from keras_pvt.model import BUILDERS
from keras_pvt.presets import canonical_variant

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
FORMAT_VERSION = 1  # raise on an incompatible change; older readers then refuse the folder
NAME_SUFFIXES = ("_imagenet", ".in1k", "_in1k")  # keras-hub / timm spellings of the ImageNet presets
STATE_KEYS = ("compile_config", "build_config")  # left out of config.json, as keras-hub does


class PresetError(ValueError):
    """A preset folder that cannot be loaded: a missing or corrupt file, weights that do not fit
    its config, or a format newer than this keras-pvt reads."""


def save_to_preset(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `model` as a preset folder at `path` and return the path.

    Args:
        model: any model keras-pvt builds (classifier, pooled, `features_only`, with
            `include_preprocessing`, a `SemanticFPN` segmenter) or another functional model
            whose layers are built-in or registered Keras layers.
        path: the folder; written beside and renamed into place once complete.
        class_names: the names of the classifier's outputs, one per class, kept in metadata.json.
        overwrite: replace a previous preset at `path` (recognised by its three files and the
            format in metadata.json). Anything else there is never replaced: `OutputRefusedError`.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"save_to_preset needs a keras.Model, got {type(model).__name__}.")
    config = _without_state(keras.saving.serialize_keras_object(model))
    metadata = preset_metadata(model, class_names)
    with staged_output(path, PRESET, overwrite=overwrite) as stage:
        (stage / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
        model.save_weights(os.fspath(stage / WEIGHTS_FILE))
        (stage / METADATA_FILE).write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    return Path(path)


def from_preset(preset: str | os.PathLike, **kwargs: Any) -> keras.Model:
    """The model a preset folder holds, or a named preset's model.

    * a folder written by `save_to_preset`: rebuilt from config.json with ``safe_mode=True``, then
      its weights loaded. `PresetError` (naming the file) for a missing, truncated or corrupt
      file, a config beyond the sanity limits of `keras_pvt.limits` (checked before anything is
      built), weights with NaN or infinite values, weights that do not fit, or a newer format
      version.
    * a name ("b0" ... "b5", "b2_li"; also "pvt_v2_b0", "pvt_v2_b0_imagenet", "pvt_v2_b0.in1k"):
      that variant's builder (`PVTV2B0` ...) with `kwargs` (``weights="imagenet"`` unless given):
      the ImageNet checkpoint from the cache, or downloaded once; offline and not cached, a
      `PretrainedWeightsUnavailableError` says how to use a local file.
    """
    if Path(preset).is_dir():
        if kwargs:
            raise TypeError(
                f"from_preset({os.fspath(preset)!r}) loads a folder as saved; options "
                f"{sorted(kwargs)} apply to named presets only."
            )
        return load_preset(preset)
    name = _preset_name(preset)
    if name is None:
        raise FileNotFoundError(
            f"{os.fspath(preset)!r} is neither a preset folder nor a preset name; give a folder "
            f"written by keras_pvt.save_to_preset or one of {sorted(BUILDERS)} (e.g. 'pvt_v2_b0')."
        )
    return BUILDERS[name](**kwargs)


def load_preset(path: str | os.PathLike) -> keras.Model:
    """The model of the preset folder `path` (see `from_preset`)."""
    folder = Path(path)
    metadata = read_preset_metadata(folder)
    config = _read_json(folder / CONFIG_FILE, "the model's config")
    if not isinstance(config, Mapping) or not {"class_name", "config"} <= set(config):
        raise PresetError(
            f"{str(folder / CONFIG_FILE)!r} is not a serialized Keras model (no class_name/config "
            "entries); write the folder with keras_pvt.save_to_preset."
        )
    check_config_limits(config, folder / CONFIG_FILE, PresetError)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file() or not h5py.is_hdf5(os.fspath(weights)):
        state = "is not an HDF5 file (truncated or corrupt)" if weights.is_file() else "is missing"
        raise PresetError(f"The preset's weights {str(weights)!r} {state}; save the preset again.")
    _check_finite_weights(weights)
    try:
        model = keras.saving.deserialize_keras_object(dict(config), safe_mode=True)
    except (TypeError, ValueError, KeyError) as error:
        raise PresetError(
            f"{str(folder / CONFIG_FILE)!r} does not describe a model this keras-pvt can build "
            f"(saved by keras-pvt {metadata.get('keras_pvt_version')}, Keras "
            f"{metadata.get('keras_version')}): {error}"
        ) from error
    if not isinstance(model, keras.Model):
        raise PresetError(f"{str(folder / CONFIG_FILE)!r} describes a {type(model).__name__}, not a model.")
    try:
        model.load_weights(os.fspath(weights))
    except ValueError as error:
        raise PresetError(
            f"The weights {str(weights)!r} do not fit the model of {str(folder / CONFIG_FILE)!r} "
            f"(the files come from different models): {str(error).splitlines()[0]} Save the "
            "preset again."
        ) from error
    except READ_ERRORS as error:
        raise _unreadable_weights(weights, error) from error
    return require_image_batches(model)


def _check_finite_weights(weights: Path) -> None:
    """PresetError if the preset's weights file is unreadable or holds NaN or infinite values."""
    try:
        check_finite_weights(weights)
    except CheckpointValueError as error:
        raise PresetError(
            f"The preset's weights {str(weights)!r} hold NaN or infinite values, so the model's "
            f"outputs would be NaN: {', '.join(error.not_finite[:REPORT_FIRST])}"
            + (
                f" and {len(error.not_finite) - REPORT_FIRST} more"
                if len(error.not_finite) > REPORT_FIRST
                else ""
            )
            + ". The model was saved after a diverged training run, or the file is damaged; save "
            "the preset again from a model with finite weights."
        ) from None
    except CheckpointReadError as error:
        raise _unreadable_weights(weights, error.__cause__ or error) from None


def _unreadable_weights(weights: Path, error: BaseException) -> PresetError:
    return PresetError(
        f"The preset's weights {str(weights)!r} cannot be read: the file is truncated or corrupt "
        f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'no detail'}). "
        "Save the preset again (or copy the folder again)."
    )


def read_preset_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """metadata.json of the preset folder `path` (class names, variant, versions), checked."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"Preset folder {str(folder)!r} does not exist.")
    metadata = _read_json(folder / METADATA_FILE, "the preset's metadata")
    if not isinstance(metadata, dict) or metadata.get("format") != PRESET_FORMAT:
        raise PresetError(
            f"{str(folder / METADATA_FILE)!r} is not keras-pvt preset metadata (no "
            f"format={PRESET_FORMAT!r}); write the folder with keras_pvt.save_to_preset."
        )
    version = metadata.get("format_version")
    if type(version) is not int or version < 1:
        raise PresetError(f"{str(folder / METADATA_FILE)!r} has no valid format_version ({version!r}).")
    if version > FORMAT_VERSION:
        raise PresetError(
            f"Preset {str(folder)!r} has format version {version}, written by keras-pvt "
            f"{metadata.get('keras_pvt_version')}; this keras-pvt reads versions up to "
            f"{FORMAT_VERSION}. Upgrade keras-pvt (pip install -U keras-pvt)."
        )
    return metadata


def preset_metadata(model: keras.Model, class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """The metadata.json entries of `model` (see `save_to_preset`)."""
    task = model_task(model)
    names = _checked_class_names(model, class_names, task)
    return {
        "format": PRESET_FORMAT,
        "format_version": FORMAT_VERSION,
        "keras_pvt_version": _package_version(),
        "keras_version": keras.version(),
        "backend": keras.backend.backend(),
        "task": task,
        "variant": model_variant(model),
        "include_preprocessing": takes_raw_pixels(model),
        "input_shape": list(model.inputs[0].shape[1:]) if len(model.inputs) == 1 else None,
        "class_names": names,
        "parameter_count": model.count_params(),
        "date_saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def model_task(model: keras.Model) -> str:
    """The kind of `model`: "classifier", "features" (a dict of maps), "segmenter", "pooled" or
    "backbone" (one map). A segmenter is recognised by SemanticFPN's "logits" and "conv_seg" layers."""
    names = {layer.name for layer in model.layers}
    if isinstance(model.output, Mapping):
        return "features"
    if "logits" in names and "conv_seg" in names:
        return "segmenter"
    if "predictions" in names:
        return "classifier"
    return "pooled" if len(model.outputs[0].shape) == 2 else "backbone"


def model_variant(model: keras.Model) -> str | None:
    """The preset variant ("b0" ...) of the PVT-v2 inside `model` (nested models too), or None."""
    config = model_config(model)
    return None if config is None else preset_of(config)


def _checked_class_names(model: keras.Model, class_names: Sequence[str] | None, task: str) -> Any:
    if class_names is None:
        return None
    if isinstance(class_names, str) or not all(isinstance(name, str) for name in class_names):
        raise TypeError("`class_names` must be a sequence of strings, one per class.")
    classes = model.outputs[0].shape[-1] if task in ("classifier", "segmenter") else None
    if classes is None or len(class_names) != classes:
        raise ValueError(
            f"`class_names` has {len(class_names)} names but the model ({task}) has "
            f"{classes if classes is not None else 'no'} classes; give one name per class."
        )
    return list(class_names)


def _preset_name(preset: Any) -> str | None:
    """The variant a preset name means ("pvt_v2_b0_imagenet" -> "b0"), or None."""
    if not isinstance(preset, str):
        return None
    name = preset
    for suffix in NAME_SUFFIXES:
        name = name.removesuffix(suffix)
    try:
        return canonical_variant(name)
    except ValueError:
        return None


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise PresetError(
            f"{str(path.parent)!r} is not a keras-pvt preset folder: {path.name} ({what}) is missing. "
            "Write one with keras_pvt.save_to_preset(model, path)."
        )
    if path.stat().st_size > MAX_REPORT_BYTES:
        raise PresetError(f"{str(path)!r} is larger than {MAX_REPORT_BYTES} bytes; not a preset file.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise PresetError(
            f"{str(path)!r} ({what}) is not valid JSON (truncated or corrupt: {error}); save the "
            "preset again."
        ) from error


def _without_state(config: Any) -> Any:
    """The serialized model without compile and build state (as keras-hub writes config.json)."""
    if isinstance(config, dict):
        return {key: _without_state(value) for key, value in config.items() if key not in STATE_KEYS}
    if isinstance(config, list):
        return [_without_state(v) for v in config]
    return config


def _package_version() -> str | None:
    """The installed keras-pvt's version (None when running from an uninstalled source tree)."""
    try:
        return importlib.metadata.version("keras-pvt")
    except importlib.metadata.PackageNotFoundError:
        return None
