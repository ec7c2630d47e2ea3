"""`keras-pvt demo --task detection` end to end with tiny settings: train, evaluate against the
baseline, export and score every format."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ai_edge_litert")
pytest.importorskip("pycocotools")


@pytest.mark.slow
def test_detection_demo_tiny_end_to_end(tmp_path, capsys):
    from keras_pvt.cli import main

    # the smallest settings that still train, export and score: 64 px, one epoch of one full batch
    # (16 images less the 10% held out for validation), 8 test images, a narrow time budget
    tiny = ["--image-size", "64", "--epochs", "1", "--train-size", "16", "--test-size", "8"]
    tiny += ["--batch-size", "8"]
    code = main(["demo", "--task", "detection", "--output", str(tmp_path), *tiny])
    assert code == 0
    out = capsys.readouterr().out
    assert "held-out test COCO AP" in out and "baseline (per class, a box of its mean" in out
    assert "| tflite_int8_raw |" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["task"] == "detection" and summary["test_images"] == 8 and summary["epochs_run"] == 1
    assert summary["dataset"].startswith("keras_pvt_det_shapes/") and len(summary["classes"]) == 6
    assert "mean" in summary["baseline"] and "centre" in summary["baseline"]
    assert 0 <= summary["baseline_ap"] <= summary["baseline_ap50"] <= 1
    formats = {row["format"]: row for row in summary["formats"]}
    assert list(formats) == ["keras", "saved_model", "tflite_float", "tflite_int8_raw"]
    for name, row in formats.items():
        assert 0 <= row["ap"] <= 1 and 0 <= row["ap50"] <= 1 and row["latency_ms"] > 0, name
        assert row["size_bytes"] > 0 and (tmp_path / row["path"]).exists(), name
    assert summary["test_ap"] == formats["keras"]["ap"] and summary["test_ap50"] == formats["keras"]["ap50"]
    assert formats["tflite_int8_raw"]["size_bytes"] < formats["tflite_float"]["size_bytes"]
    assert formats["keras"]["agreement"] is None
    for name in ("saved_model", "tflite_float"):  # None: nothing detected on either side (1 epoch)
        assert formats[name]["agreement"] in (None, 1.0) or formats[name]["agreement"] >= 0.99, name
    for name in (
        "run/best.keras",
        "run/history.csv",
        "export/saved_model/saved_model.pb",
        "export/detector_float32.tflite",
        "export/raw_int8.tflite",
        "summary.md",
        ".keras-pvt-demo",
    ):
        assert (tmp_path / name).exists(), name
