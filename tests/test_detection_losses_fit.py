"""`model.fit` of RetinaNet's raw outputs on `keras_pvt_det_shapes` with the pipeline's targets and
the mmdet losses: the loss goes down, and the COCO callback writes its columns each epoch."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from keras_pvt.data.det_pipeline import make_detection_pipelines
from keras_pvt.detection import RetinaNet
from keras_pvt.detection.callbacks import CocoEvaluation
from keras_pvt.detection.losses import RetinaNetBoxLoss, RetinaNetFocalLoss

pytestmark = pytest.mark.slow


def test_fit_reduces_the_loss_and_logs_coco_ap(tmp_path):
    pytest.importorskip("pycocotools")
    keras.utils.set_random_seed(0)
    pipes = make_detection_pipelines(
        "keras_pvt_det_shapes/64px_16_4", image_size=64, batch_size=4, data_dir=str(tmp_path / "tfds")
    )
    model = RetinaNet(
        "b0",
        num_classes=pipes.num_classes,
        input_shape=(64, 64, 3),
        raw_outputs=True,
        fpn_channels=32,
        head_channels=32,
        stacked_convs=1,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-3, weight_decay=1e-4),
        loss={"cls_logits": RetinaNetFocalLoss(), "box_deltas": RetinaNetBoxLoss()},
    )
    batch = next(iter(pipes.train))
    before = model.evaluate(*batch, verbose=0, return_dict=True)["loss"]
    callback = CocoEvaluation(pipes.val, pipes.category_ids, pipes.class_names)
    csv = tmp_path / "history.csv"
    history = model.fit(
        pipes.train, epochs=3, verbose=0, callbacks=[callback, keras.callbacks.CSVLogger(str(csv))]
    ).history
    after = model.evaluate(*batch, verbose=0, return_dict=True)["loss"]
    assert np.isfinite(history["loss"]).all()
    assert after < 0.85 * before, (before, after, history["loss"])
    assert len(history["val_ap"]) == 3 and all(0.0 <= v <= 1.0 for v in history["val_ap"])
    header = csv.read_text().splitlines()[0].split(",")
    assert {"val_ap", "val_ap50", "val_ap_large"} <= set(header)
    assert not math.isnan(callback.history[-1]["ap"])
