"""Preset folders (config.json + model.weights.h5 + metadata.json): round trips, names, errors, safety."""

from __future__ import annotations

import importlib.util
import json

import h5py
import keras
import numpy as np
import pytest

import keras_pvt
from keras_pvt import PVT_V2, from_preset, save_to_preset
from keras_pvt._safe_write import OutputRefusedError
from keras_pvt.checkpoints import pretrained
from keras_pvt.preset_files import FORMAT_VERSION, PresetError, read_preset_metadata

from helpers import tiny_config

pytestmark = pytest.mark.all_backends

PRESET_FILES = ["config.json", "metadata.json", "model.weights.h5"]


def _images(channels: int = 3) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (1, 64, 64, channels)).astype(np.float32)


def _assert_same_outputs(model: keras.Model, restored: keras.Model, images: np.ndarray) -> None:
    ours, theirs = model(images), restored(images)
    if isinstance(ours, dict):
        assert list(theirs) == list(ours)
    for a, b in zip(keras.tree.flatten(ours), keras.tree.flatten(theirs), strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


@pytest.mark.parametrize(
    ("options", "task"),
    [
        ({}, "classifier"),
        ({"features_only": True}, "features"),
        ({"include_preprocessing": True, "input_shape": (None, None, 4)}, "classifier"),
    ],
    ids=["classifier", "features_only", "include_preprocessing"],
)
def test_every_kind_of_model_round_trips(tmp_path, options, task) -> None:
    model = PVT_V2(tiny_config(), **options)
    path = save_to_preset(model, tmp_path / "preset")
    assert sorted(p.name for p in path.iterdir()) == PRESET_FILES
    config = json.loads((path / "config.json").read_text())
    assert config["class_name"] == "Functional" and "compile_config" not in config
    metadata = read_preset_metadata(path)
    assert metadata["task"] == task and metadata["format_version"] == FORMAT_VERSION
    assert metadata["include_preprocessing"] is bool(options.get("include_preprocessing"))
    assert metadata["keras_version"] == keras.version() and metadata["date_saved"]
    restored = from_preset(path)
    assert restored.name == model.name and len(restored.weights) == len(model.weights)
    _assert_same_outputs(model, restored, _images(model.inputs[0].shape[-1]))


def test_the_segmenter_round_trips(tmp_path) -> None:
    if importlib.util.find_spec("keras_pvt.segmentation") is None:
        pytest.skip("keras_pvt.segmentation (SemanticFPN) is not in this tree yet")
    from keras_pvt.segmentation.model import SemanticFPN

    model = SemanticFPN(tiny_config(), num_classes=5, fpn_channels=16, head_channels=8)
    restored = from_preset(save_to_preset(model, tmp_path / "segmenter", class_names=list("abcde")))
    metadata = read_preset_metadata(tmp_path / "segmenter")
    assert metadata["task"] == "segmenter" and metadata["class_names"] == list("abcde")
    _assert_same_outputs(model, restored, _images())


@pytest.fixture(scope="module")
def tiny_model() -> keras.Model:
    return PVT_V2(tiny_config())


@pytest.fixture
def preset(tmp_path, tiny_model):
    return save_to_preset(tiny_model, tmp_path / "preset")


def test_metadata_names_the_variant_and_the_classes(tmp_path, tiny_model) -> None:
    model = keras_pvt.PVTV2B0(weights=None, classes=3)
    save_to_preset(model, tmp_path / "b0", class_names=["cat", "dog", "bird"])
    metadata = read_preset_metadata(tmp_path / "b0")
    assert metadata["variant"] == "b0" and metadata["class_names"] == ["cat", "dog", "bird"]
    assert metadata["parameter_count"] == model.count_params()
    with pytest.raises(ValueError, match="one name per class"):
        save_to_preset(model, tmp_path / "other", class_names=["cat"])
    assert not (tmp_path / "other").exists()
    save_to_preset(tiny_model, tmp_path / "custom")
    assert read_preset_metadata(tmp_path / "custom")["variant"] is None


def test_named_presets_build_the_variant_and_fail_clearly_offline(tmp_path, monkeypatch, preset) -> None:
    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path / "empty_cache"))
    monkeypatch.setenv(pretrained.OFFLINE_ENV, "1")
    with pytest.raises(pretrained.PretrainedWeightsUnavailableError, match="pvt_v2_b0"):
        from_preset("pvt_v2_b0_imagenet")
    model = from_preset("b0", weights=None, include_top=False, include_preprocessing=True)
    assert model.name == "pvt_v2_b0" and model.get_layer("pixel_normalization") is not None
    with pytest.raises(FileNotFoundError, match="neither a preset folder nor a preset name"):
        from_preset("pvt_v2_b9")
    with pytest.raises(TypeError, match="named presets only"):
        from_preset(preset, include_top=False)


def test_missing_or_corrupt_files_are_named(preset) -> None:
    text = (preset / "config.json").read_text()
    (preset / "config.json").write_text(text[: len(text) // 2])
    with pytest.raises(PresetError, match=r"config\.json.*not valid JSON"):
        from_preset(preset)
    (preset / "config.json").unlink()
    with pytest.raises(PresetError, match=r"config\.json .*is missing"):
        from_preset(preset)


def test_mismatched_weights_are_refused(tmp_path, preset) -> None:
    other = save_to_preset(PVT_V2(tiny_config(depths=(1, 2, 1, 1))), tmp_path / "other")
    (preset / "model.weights.h5").replace(other / "model.weights.h5")
    with pytest.raises(PresetError, match="do not fit"):
        from_preset(other)
    (other / "model.weights.h5").write_bytes(b"not hdf5")
    with pytest.raises(PresetError, match="not an HDF5 file"):
        from_preset(other)


def test_a_newer_format_or_foreign_metadata_is_refused(preset) -> None:
    metadata = json.loads((preset / "metadata.json").read_text())
    (preset / "metadata.json").write_text(json.dumps({**metadata, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(PresetError, match="Upgrade keras-pvt"):
        from_preset(preset)
    (preset / "metadata.json").write_text(json.dumps({"keras_version": "3.0.0"}))  # e.g. keras-hub's
    with pytest.raises(PresetError, match="not keras-pvt preset metadata"):
        from_preset(preset)


def test_code_in_config_json_is_never_run(tmp_path) -> None:
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    path = save_to_preset(model, tmp_path / "lambda")
    with pytest.raises(PresetError, match="Lambda"):
        from_preset(path)


def test_only_a_previous_preset_is_replaced_and_only_when_asked(tmp_path, preset, tiny_model) -> None:
    with pytest.raises(OutputRefusedError, match="pass --overwrite"):
        save_to_preset(tiny_model, preset)
    replacement = PVT_V2(tiny_config(), classes=4)
    save_to_preset(replacement, preset, overwrite=True)
    assert from_preset(preset).output.shape[-1] == 4
    users = tmp_path / "my_folder"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    with pytest.raises(OutputRefusedError, match="not a previous keras-pvt preset"):
        save_to_preset(replacement, users, overwrite=True)
    assert (users / "notes.txt").read_text() == "mine"
    (preset / "extra.txt").write_text("added by the user")
    with pytest.raises(OutputRefusedError, match="not a previous keras-pvt preset"):
        save_to_preset(replacement, preset, overwrite=True)


def _weight_names(path) -> list[str]:
    names: list[str] = []
    with h5py.File(path, "r") as file:
        file.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
    return names


def test_weights_with_nan_or_inf_are_refused_naming_the_file_and_the_weights(preset) -> None:
    weights = preset / "model.weights.h5"
    names = _weight_names(weights)
    with h5py.File(weights, "r+") as file:
        for name, value in ((names[0], np.nan), (names[-1], np.inf)):
            values = file[name][...]
            values.flat[0] = value
            file[name][...] = values
    saved = weights.read_bytes()
    with pytest.raises(PresetError) as info:
        from_preset(preset)
    message = str(info.value)
    assert str(weights) in message and "NaN or infinite" in message and "save the preset again" in message
    assert f"{names[0]} (1 NaN, 0 inf)" in message and f"{names[-1]} (0 NaN, 1 inf)" in message
    assert weights.read_bytes() == saved  # the user's files are only read


@pytest.mark.parametrize("damage", ["truncated", "second_half_zeroed"])
def test_truncated_or_damaged_weights_are_a_preset_error_naming_the_file(preset, damage) -> None:
    weights = preset / "model.weights.h5"
    data = bytearray(weights.read_bytes())
    half = len(data) // 2
    damaged = bytes(data[:half]) if damage == "truncated" else bytes(data[:half]) + bytes(len(data) - half)
    weights.write_bytes(damaged)
    with pytest.raises(
        PresetError, match=r"model\.weights\.h5' cannot be read: the file is truncated or corrupt"
    ):
        from_preset(preset)
    assert weights.read_bytes() == damaged


def _edit_layer(path, class_name: str, **changes) -> None:
    config = json.loads((path / "config.json").read_text())
    for layer in config["config"]["layers"]:
        if layer["class_name"] == class_name:
            layer["config"].update(changes)
    (path / "config.json").write_text(json.dumps(config))


def _nothing_built(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the model was being built")

    monkeypatch.setattr(keras.saving, "deserialize_keras_object", refuse)


def test_an_absurd_layer_size_is_refused_before_building_anything(preset, monkeypatch) -> None:
    _edit_layer(preset, "Dense", units=2_000_000_000)
    _nothing_built(monkeypatch)
    with pytest.raises(PresetError) as info:
        from_preset(preset)
    message = str(info.value)
    assert str(preset / "config.json") in message and "refused before building anything" in message
    assert "layer 'head' (Dense): `units` = 2000000000 is above the sanity limit" in message


def test_layers_that_together_would_exhaust_memory_are_refused_before_building(tmp_path, monkeypatch) -> None:
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(5)(inputs)))
    path = save_to_preset(model, tmp_path / "wide")
    _edit_layer(path, "Dense", units=1_000_000)  # each within the limit; 10**12 weights together
    _nothing_built(monkeypatch)
    with pytest.raises(
        PresetError, match=r"config\.json.*the model would have about 1,000,00\d,\d{3},\d{3} parameters"
    ):
        from_preset(path)


def test_a_preset_model_refuses_another_rank_naming_the_shape_not_the_values(preset) -> None:
    model = from_preset(preset)
    for shape in [(64, 64, 3), (64, 64), (1, 1, 64, 64, 3)]:
        with pytest.raises(ValueError, match=rf"expected ndim=4, found ndim={len(shape)}") as info:
            model(np.full(shape, 0.777, "float32"))
        assert str(shape) in str(info.value) and "0.777" not in str(info.value)
