"""`SegmentationCrossEntropy` under `MirroredStrategy` (two logical CPUs, in a subprocess: devices
are set before TensorFlow starts) gives the same loss and the same update as on one device. Keras'
per-pixel reduction scales the loss by the replica count; a loss returning a ready scalar skips
that, and its gradients, summed over replicas, come out that many times too large."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # a subprocess starting TensorFlow

SCRIPT = """
import json
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
import numpy as np

from keras_pvt.segmentation.losses import SegmentationCrossEntropy

rng = np.random.default_rng(0)
images = rng.normal(size=(8, 6, 6, 3)).astype("float32")
masks = rng.integers(0, 4, (8, 6, 6)).astype("int32")
masks[:, 0, :2] = 255  # the same number of ignored pixels on each replica


def one_step(strategy):
    with strategy.scope():
        keras.utils.set_random_seed(1)
        inputs = keras.Input((6, 6, 3))
        model = keras.Model(inputs, keras.layers.Conv2D(4, 1)(inputs))
        model.compile(keras.optimizers.SGD(0.5), loss=SegmentationCrossEntropy())
    initial = model.get_weights()
    data = tf.data.Dataset.from_tensor_slices((images, masks)).batch(8)
    history = model.fit(data, epochs=1, verbose=0)
    updates = [(after - before).tolist() for after, before in zip(model.get_weights(), initial)]
    return {"loss": history.history["loss"][0], "updates": updates}


mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
result = {"single": one_step(tf.distribute.get_strategy()), "mirrored": one_step(mirrored)}
result["replicas"] = mirrored.num_replicas_in_sync
print("RESULT " + json.dumps(result))
"""


def test_mirrored_strategy_matches_one_device():
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    single, mirrored = result["single"], result["mirrored"]
    assert result["replicas"] == 2
    np.testing.assert_allclose(mirrored["loss"], single["loss"], rtol=1e-5)
    for ours, reference in zip(mirrored["updates"], single["updates"]):
        assert np.abs(reference).max() > 1e-3  # the step moved the weights
        np.testing.assert_allclose(np.array(ours), np.array(reference), rtol=1e-4, atol=1e-6)
