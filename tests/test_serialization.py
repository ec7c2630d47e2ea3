"""Saving and loading: `.keras` in a fresh process with safe_mode=True, config round trips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_pvt import PVT_V2

from helpers import tiny_config

REPO = Path(__file__).resolve().parents[1]


def _run_fresh(code: str) -> None:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow  # a fresh Python process that imports TensorFlow
def test_keras_file_loads_in_a_fresh_process_with_safe_mode(tmp_path, rng):
    model = PVT_V2(tiny_config(linear=True, drop_path_rate=0.1), name="li_tiny")
    images = rng.random((2, 57, 75, 3), dtype=np.float32)
    expected = keras.ops.convert_to_numpy(model(images))
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "images.npy", images)
    _run_fresh(
        f"""
        import keras, numpy as np
        import keras_pvt  # registers the layers
        model = keras.models.load_model({str(tmp_path / "m.keras")!r}, safe_mode=True)
        images = np.load({str(tmp_path / "images.npy")!r})
        np.save({str(tmp_path / "out.npy")!r}, keras.ops.convert_to_numpy(model(images)))
        """
    )
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)


@pytest.mark.all_backends
def test_features_only_model_round_trip(tmp_path, rng):
    model = PVT_V2(tiny_config(), features_only=True)
    images = rng.random((1, 64, 96, 3), dtype=np.float32)
    before = model(images)
    model.save(tmp_path / "f.keras")
    loaded = keras.models.load_model(tmp_path / "f.keras", safe_mode=True)
    after = loaded(images)
    assert sorted(after) == ["stage1", "stage2", "stage3", "stage4"]
    for name in before:
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(after[name]), keras.ops.convert_to_numpy(before[name])
        )


@pytest.mark.all_backends
def test_model_config_round_trip(rng):
    model = PVT_V2(tiny_config(sr_ratios=(4, 2, 1, 1), qkv_bias=False), classes=3)
    config = model.get_config()
    json.dumps(config)  # plain JSON
    clone = keras.Model.from_config(config)
    clone.set_weights(model.get_weights())
    images = rng.random((2, 64, 64, 3), dtype=np.float32)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(clone(images)), keras.ops.convert_to_numpy(model(images))
    )
    assert clone.count_params() == model.count_params()


@pytest.mark.all_backends
def test_weights_h5_round_trip(tmp_path, rng):
    model = PVT_V2(tiny_config())
    model.save_weights(tmp_path / "w.weights.h5")
    other = PVT_V2(tiny_config())
    other.load_weights(tmp_path / "w.weights.h5")
    images = rng.random((1, 64, 64, 3), dtype=np.float32)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(other(images)), keras.ops.convert_to_numpy(model(images))
    )
