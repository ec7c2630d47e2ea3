"""Our own Keras files (``.weights.h5``, ``.keras``, a preset folder's weights) into a model, or a
whole model out of a ``.keras`` file, with one set of errors for classifiers and segmenters alike.

Refused with the file named: not that format, truncated or corrupt (`CheckpointReadError`), NaN or
infinite weights (`CheckpointValueError`, before anything is loaded, as for checkpoints), weights
that do not fit the model (ValueError), and for a whole model a config beyond the sanity limits of
`keras_pvt.limits` (before anything is built; then rebuilt with ``safe_mode=True``).
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np

from keras_pvt.checkpoints.assign import adapt_input_conv, input_adapted_message, non_finite_entry
from keras_pvt.checkpoints.errors import CheckpointReadError, CheckpointValueError
from keras_pvt.images import RGB_CHANNELS
from keras_pvt.limits import check_model_config

__all__ = ["check_config_limits", "check_finite_weights", "load_keras_model", "load_keras_weights"]

KERAS_ARCHIVE_CONFIG = "config.json"  # the serialized model inside a `.keras` zip archive
KERAS_ARCHIVE_WEIGHTS = "model.weights.h5"  # the weights inside a `.keras` zip archive
H5_MODEL_CONFIG = "model_config"  # the serialized model of a legacy `.h5` model file (an attribute)
# What h5py and zipfile raise for a truncated or corrupt file (h5py: OSError on open, RuntimeError
# or KeyError for damaged object headers).
READ_ERRORS = (OSError, EOFError, KeyError, RuntimeError, zipfile.BadZipFile)


def load_keras_weights(model: Any, path: Path, *, rebuild: str) -> None:
    """`model.load_weights(path)` with errors naming the file and the fix.

    A file without the format's signature, or one truncated or corrupt, raises `CheckpointReadError`;
    one holding NaN or infinite weights `CheckpointValueError` (the model untouched); one that does
    not fit `model` raises ValueError, ending "Build the same `rebuild` that saved them." A PVT-v2
    built for another channel count also takes a file saved for RGB input: its first kernel is
    adapted by `adapt_input_conv`, with a warning.
    """
    _check_signature(path)
    check_finite_weights(path)
    try:
        _load_adapting_input(model, path)
    except ValueError as error:
        raise ValueError(
            f"The Keras weights {str(path)!r} do not fit model {model.name!r}: {error} Build the "
            f"same {rebuild} that saved them."
        ) from error
    except READ_ERRORS as error:
        raise _unreadable(path, error) from error


def load_keras_model(path: str | os.PathLike, *, compile: bool = False) -> keras.Model:
    """The model a ``.keras`` (or legacy ``.h5``) file holds, rebuilt with ``safe_mode=True``.

    Its config is checked against the sanity limits and its weights for NaN and infinite values
    before anything is built, as `from_preset` does for preset folders.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Keras model file {str(path)!r} not found.")
    _check_signature(path)
    check_config_limits(_saved_config(path), path)
    check_finite_weights(path)
    return keras.saving.load_model(os.fspath(path), compile=compile, safe_mode=True)


def check_config_limits(config: Any, source: Path, error: type[ValueError] = ValueError) -> None:
    """`error` naming `source` when the serialized model `config` is beyond keras-pvt's sanity limits.

    Checked before any layer is built: a config asking for billions of weights would otherwise
    exhaust memory.
    """
    try:
        check_model_config(config, what="the model")
    except ValueError as reason:
        raise error(
            f"{str(source)!r} describes a model beyond keras-pvt's sanity limits, refused before "
            f"building anything: {reason} The file is damaged or not written by keras-pvt; save it "
            "again."
        ) from None


def check_finite_weights(path: Path) -> None:
    """`CheckpointValueError` naming `path` and each weight of this Keras file with NaN or inf values.

    Reads every float weight once, before any is loaded; a file h5py cannot read (truncated or
    corrupt) raises `CheckpointReadError` naming it.
    """
    try:
        not_finite = [
            entry
            for name, value in _float_weights(path)
            if (entry := non_finite_entry(name, value)) is not None
        ]
    except READ_ERRORS as error:
        raise _unreadable(path, error) from error
    if not_finite:
        raise CheckpointValueError([], not_finite, source=os.fspath(path))


def _saved_config(path: Path) -> Any:
    """The serialized model of a ``.keras`` archive (config.json) or a legacy ``.h5`` model file."""
    try:
        if _is_keras_archive(path):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                text = archive.read(KERAS_ARCHIVE_CONFIG) if KERAS_ARCHIVE_CONFIG in names else None
        else:
            with h5py.File(os.fspath(path), "r") as file:
                text = file.attrs.get(H5_MODEL_CONFIG)
        config = None if text is None else json.loads(text)
    except (*READ_ERRORS, ValueError, UnicodeDecodeError, RecursionError) as error:
        raise _unreadable(path, error) from error
    if config is None:
        raise CheckpointReadError(
            f"{str(path)!r} holds no model config: it is a weights file, not a whole model. Load it "
            "into a model built from code (`model.load_weights`), or save the model with model.save()."
        )
    return config


def _load_adapting_input(model: Any, path: Path) -> None:
    """`model.load_weights`; for a PVT-v2 of another channel count, also a file saved for RGB input.

    Such a file loads into an RGB twin of `model` (same layers, 3 input channels); its weights then
    go to `model`, the first kernel adapted. The first error stands when the twin does not take the
    file either.
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
    """A copy of `model` taking 3-channel images, or None (RGB already, or not a PVT-v2 classifier)."""
    kernel = _first_kernel(model)
    if kernel is None or kernel.shape[2] == RGB_CHANNELS or len(model.inputs) != 1:
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
    try:
        return model.get_layer("stage1").patch_embed.proj.kernel
    except ValueError:  # no stage 1 at the top: a segmenter, or not a keras-pvt model
        return None


def _unreadable(path: Path, error: BaseException) -> CheckpointReadError:
    return CheckpointReadError(
        f"Cannot read {str(path)!r} as a {_kind(path)} file: it is truncated or corrupt "
        f"({type(error).__name__}: {error}). Save or download it again."
    )


def _float_weights(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(name, values) of every floating-point dataset of a `.weights.h5` file or a `.keras` archive."""
    if not _is_keras_archive(path):
        with h5py.File(os.fspath(path), "r") as file:
            yield from _h5_float_datasets(file)
        return
    with zipfile.ZipFile(path) as archive:
        if KERAS_ARCHIVE_WEIGHTS not in archive.namelist():
            return  # another layout of a later Keras: Keras's own loading checks what it reads
        with archive.open(KERAS_ARCHIVE_WEIGHTS) as member, h5py.File(member, "r") as file:
            yield from _h5_float_datasets(file)


def _h5_float_datasets(file: h5py.File) -> Iterator[tuple[str, np.ndarray]]:
    names: list[str] = []
    file.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
    for name in names:
        dataset = file[name]
        if dataset.dtype.kind == "f":
            yield name, np.asarray(dataset[...])


def _is_keras_archive(path: Path) -> bool:
    return path.name.lower().endswith(".keras")


def _kind(path: Path) -> str:
    if _is_keras_archive(path):
        return "Keras model (.keras)"
    return "Keras weights (.weights.h5)" if path.name.lower().endswith(".weights.h5") else "Keras model (.h5)"


def _check_signature(path: Path) -> None:
    """`CheckpointReadError` unless a `.keras` file is a zip archive and any other an HDF5 file."""
    archive = _is_keras_archive(path)
    if zipfile.is_zipfile(path) if archive else h5py.is_hdf5(os.fspath(path)):
        return
    raise CheckpointReadError(
        f"{str(path)!r} is not a {_kind(path)} file: "
        + ("it is not a zip archive" if archive else "it is not an HDF5 file")
        + " (truncated, corrupt or another format under that name). Save or download it again."
    )
