"""SavedModel export: dynamic and fixed signatures, named outputs, loading without keras-pvt."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from keras_pvt import PVT_V2, PVTV2Config
from keras_pvt.export import (
    VerificationError,
    export_and_verify_saved_model,
    export_saved_model,
    report_path,
    write_report_json,
)

SMALL = PVTV2Config(embed_dims=(16, 32, 48, 64), num_heads=(1, 2, 3, 4), depths=(1, 1, 1, 1), num_classes=10)


@pytest.fixture(scope="module")
def model():
    return PVT_V2(SMALL)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    return export_saved_model(model, tmp_path_factory.mktemp("sm") / "classifier")


def _images(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_dynamic_round_trip_at_two_sizes(model, exported):
    serve = tf.saved_model.load(exported).signatures["serving_default"]
    spec = serve.structured_input_signature[1]["images"]
    assert spec.shape.as_list() == [None, None, None, 3] and spec.dtype == tf.float32
    for shape in ((1, 64, 64, 3), (2, 96, 80, 3)):
        x = _images(shape)
        out = serve(images=tf.constant(x))
        assert list(out) == ["predictions"]
        np.testing.assert_allclose(out["predictions"].numpy(), model(x).numpy(), atol=1e-5)


@pytest.mark.slow
def test_loads_in_a_process_without_keras_pvt(model, exported, tmp_path):
    x = _images((2, 72, 64, 3), seed=1)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", model(x).numpy())
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import tensorflow as tf
        serve = tf.saved_model.load({str(exported)!r}).signatures["serving_default"]
        x = np.load({str(tmp_path / "x.npy")!r})
        y = serve(images=tf.constant(x))["predictions"].numpy()
        assert not any(m.startswith("keras_pvt") for m in sys.modules), "keras_pvt was imported"
        print("maxdiff", float(np.abs(y - np.load({str(tmp_path / "y.npy")!r})).max()))
        """
    )
    env = {**os.environ, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.split("maxdiff")[-1]) <= 1e-5


def test_features_only_has_named_outputs(tmp_path):
    features = PVT_V2(SMALL, features_only=True)
    path = export_saved_model(features, tmp_path / "features")
    serve = tf.saved_model.load(path).signatures["serving_default"]
    x = _images((1, 64, 96, 3))
    out = serve(images=tf.constant(x))
    reference = features(x)
    assert sorted(out) == ["stage1", "stage2", "stage3", "stage4"]
    for name in out:
        np.testing.assert_allclose(out[name].numpy(), reference[name].numpy(), atol=1e-5)


def test_fixed_shape_export_is_verified_and_reported(model, tmp_path):
    target = tmp_path / "fixed"
    report = export_and_verify_saved_model(model, target, image_size=64, batch_size=1, runs=2)
    assert report.ok and report.input_shape == [1, 64, 64, 3]
    assert report.max_abs_diff_overall <= 1e-5 and report.top1_agreement == 1.0
    assert report.size_bytes > 0 and report.latency_ms_median > 0
    json_path = write_report_json(report, report_path(target))
    assert json_path == tmp_path / "fixed.report.json" and '"ok": true' in json_path.read_text()
    spec = tf.saved_model.load(str(target)).signatures["serving_default"]
    assert spec.structured_input_signature[1]["images"].shape.as_list() == [1, 64, 64, 3]


def test_failed_verification_leaves_nothing(model, tmp_path):
    with pytest.raises(VerificationError, match="top-1 agreement"):
        export_and_verify_saved_model(model, tmp_path / "out", image_size=64, min_top1=1.5, runs=1)
    assert os.listdir(tmp_path) == []


def test_size_conflicting_with_a_built_input_is_refused(tmp_path):
    fixed = PVT_V2(SMALL, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="built for input height 64"):
        export_saved_model(fixed, tmp_path / "x", image_size=96)
    with pytest.raises(ValueError, match="batch_size"):
        export_saved_model(fixed, tmp_path / "x", batch_size=0)
    assert os.listdir(tmp_path) == []
