"""Subprocess body of tests/test_distributed.py (TensorFlow devices must be set up before use).

usage: python _distributed_worker.py MODE DATA_DIR OUTPUT
  MODE "mirrored": train on one device, then with MirroredStrategy over two logical CPUs, from
  the same weights and data order; print the losses of both as JSON.
  MODE "multi_worker": train with strategy "multi_worker" (the cluster comes from TF_CONFIG);
  print this worker's losses as JSON.
"""

from __future__ import annotations

import json
import sys

import tensorflow as tf

MODE, DATA_DIR, OUTPUT = sys.argv[1:4]
DATASET = "keras_pvt_shapes/32px_256_64"

if MODE == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from keras_pvt import PVT_V2, PVTV2Config  # noqa: E402  (after the device setup)
from keras_pvt.training import get_strategy, train  # noqa: E402

TINY = PVTV2Config(
    embed_dims=(16, 32, 48, 64),
    num_heads=(1, 2, 3, 4),
    depths=(1, 1, 1, 1),
    mlp_ratios=(4, 4, 4, 4),
    num_classes=6,
)


def run(strategy, output, weights=None):
    result = train(
        TINY,
        dataset=DATASET,
        data_dir=DATA_DIR,
        output=output,
        image_size=32,
        epochs=1,
        batch_size=16,
        steps_per_epoch=4,
        augment=False,
        shuffle=False,
        strategy=strategy,
        weights=weights,
        resume=False,
        verbose=0,
    )
    history = result.history
    return {key: history[key] for key in ("loss", "val_loss", "val_accuracy") if key in history}


if MODE == "mirrored":
    # both runs start from the same weights (the fine-tuning path copies every layer)
    init = f"{OUTPUT}/init.keras"
    PVT_V2(TINY).save(init)
    single = run("auto", f"{OUTPUT}/single", init)
    mirrored_strategy = get_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    mirrored = run(mirrored_strategy, f"{OUTPUT}/mirrored", init)
    print(
        "RESULT "
        + json.dumps(
            {"single": single, "mirrored": mirrored, "replicas": mirrored_strategy.num_replicas_in_sync}
        )
    )
else:
    losses = run("multi_worker", OUTPUT)
    print("RESULT " + json.dumps(losses))
