"""`keras-pvt demo` end to end with tiny settings: train, evaluate, export, verify, summarise."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ai_edge_litert")


@pytest.mark.slow
def test_demo_tiny_end_to_end(tmp_path, capsys):
    from keras_pvt.cli import main

    code = main(
        [
            "demo",
            "--output",
            str(tmp_path),
            "--image-size",
            "32",
            "--epochs",
            "1",
            "--train-size",
            "128",
            "--test-size",
            "32",
            "--batch-size",
            "16",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "held-out test accuracy" in out and "| tflite_int8 |" in out
    with open(tmp_path / "summary.json") as handle:
        summary = json.load(handle)
    assert summary["test_images"] == 32 and summary["epochs_run"] == 1
    formats = {row["format"]: row for row in summary["formats"]}
    assert set(formats) == {"keras", "saved_model", "tflite_float", "tflite_int8"}
    for row in formats.values():
        assert 0.0 <= row["accuracy"] <= 1.0 and row["latency_ms"] > 0
    # float exports agree with Keras on every held-out image
    assert formats["saved_model"]["accuracy"] == formats["keras"]["accuracy"]
    assert formats["tflite_float"]["accuracy"] == formats["keras"]["accuracy"]
    assert formats["tflite_int8"]["size_bytes"] < formats["tflite_float"]["size_bytes"]
    for name in (
        "run/best.keras",
        "run/history.csv",
        "run/training_curves.png",
        "export/saved_model/saved_model.pb",
        "export/model_none.tflite",
        "export/model_int8.tflite",
        "summary.md",
    ):
        assert (tmp_path / name).exists(), name
