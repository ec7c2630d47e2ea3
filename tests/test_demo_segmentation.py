"""`keras-pvt demo --task segmentation` end to end with tiny settings: train, evaluate, export, verify."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ai_edge_litert")


@pytest.mark.slow
def test_segmentation_demo_tiny_end_to_end(tmp_path, capsys):
    from keras_pvt.cli import main

    # the smallest settings that still train, export and verify: 32 px (the dataset's minimum),
    # one epoch of one full batch (16 images less the 10% held out for validation), 8 test images
    tiny = ["--image-size", "32", "--epochs", "1", "--train-size", "16", "--test-size", "8"]
    tiny += ["--batch-size", "8"]
    code = main(["demo", "--task", "segmentation", "--output", str(tmp_path), *tiny])
    assert code == 0
    out = capsys.readouterr().out
    assert "held-out test mIoU" in out and "all-background baseline" in out and "| tflite_int8 |" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["task"] == "segmentation" and summary["test_images"] == 8 and summary["epochs_run"] == 1
    assert len(summary["classes"]) == 7 and summary["classes"][0] == "background"
    assert 0 < summary["baseline_mean_iou"] < summary["baseline_pixel_accuracy"] < 1
    formats = {row["format"]: row for row in summary["formats"]}
    assert set(formats) == {"keras", "saved_model", "tflite_float", "tflite_int8"}
    for row in formats.values():
        assert 0 <= row["mean_iou"] <= 1 and 0 <= row["pixel_accuracy"] <= 1 and row["latency_ms"] > 0
    assert summary["test_mean_iou"] == formats["keras"]["mean_iou"]
    # float exports agree with Keras on every held-out pixel (up to argmax ties), int8 on most
    for name in ("saved_model", "tflite_float"):
        assert formats[name]["pixel_agreement"] >= 0.999
        assert formats[name]["mean_iou"] == pytest.approx(formats["keras"]["mean_iou"], abs=1e-3)
    assert formats["tflite_int8"]["pixel_agreement"] >= 0.9
    assert formats["tflite_int8"]["size_bytes"] < formats["tflite_float"]["size_bytes"]
    for name in (
        "run/best.keras",
        "run/history.csv",
        "export/saved_model/saved_model.pb",
        "export/model_none.tflite",
        "export/model_int8.tflite",
        "summary.md",
        ".keras-pvt-demo",
    ):
        assert (tmp_path / name).exists(), name
