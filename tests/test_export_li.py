"""The Li variant (b2_li) exported to SavedModel, dynamic-size TFLite and OpenVINO, each against timm.

The export holds the adaptive 7x7 pooling of the linear attention, whose windows depend on the map
size at run time: the riskiest part of an export. Each file is exported once with dynamic height and
width, then run at the fixture sizes 64x64 (maps 16, 8, 4, 2) and 45x71 (12x18 ... 2x3: uneven
windows, and maps below 7x7 that the pooling upsamples), and its logits and four stage maps are
compared with timm's (tests/fixtures/seeded_b2_li.npz) at the bar of tests/test_fidelity.py. The
exports' own verification against Keras is switched off: the reference here is timm.
"""

from __future__ import annotations

import numpy as np
import pytest
from _pvt_reference import (
    OUTPUTS,
    TOLERANCE,
    seeded_variant_state,
    stages_and_logits,
    variant_cases,
    variant_errors,
)

from keras_pvt import PVT_V2
from keras_pvt.presets import get_config

VARIANT = "b2_li"
DYNAMIC = [None, None, None, 3]


@pytest.fixture(scope="module")
def model():
    """b2_li with the fixture's seeded weights: outputs "stage1" ... "stage4" and "logits"."""
    classifier = PVT_V2(VARIANT, weights=seeded_variant_state(VARIANT), classifier_activation=None)
    return stages_and_logits(classifier)


def _assert_matches_timm(run, label: str) -> None:
    """`run(images) -> {output: array}` meets the bar at every fixture size."""
    for case, images in variant_cases():
        outputs = run(images)
        assert set(OUTPUTS) <= set(outputs), (label, sorted(outputs))
        errors = variant_errors(VARIANT, case, {key: np.asarray(outputs[key]) for key in OUTPUTS})
        assert max(errors.values()) <= TOLERANCE, (label, case, errors)


def test_fixture_sizes_put_li_maps_below_the_pool_and_windows_uneven() -> None:
    config = get_config(VARIANT)
    assert config.linear
    maps = [
        m for _, images in variant_cases() for side in images.shape[1:3] for m in config.stage_sizes(side)
    ]
    assert any(m < 7 for m in maps) and any(m > 7 and m % 7 for m in maps)


@pytest.mark.slow
def test_saved_model_matches_timm(model, tmp_path) -> None:
    import tensorflow as tf

    from keras_pvt.export import SIGNATURE_KEY, export_saved_model

    path = export_saved_model(model, tmp_path / "b2_li_saved_model")
    serve = tf.saved_model.load(path).signatures[SIGNATURE_KEY]
    assert serve.structured_input_signature[1]["images"].shape.as_list() == DYNAMIC
    _assert_matches_timm(lambda images: {k: v.numpy() for k, v in serve(images=images).items()}, "SavedModel")


@pytest.mark.slow
def test_dynamic_size_tflite_matches_timm(model, tmp_path) -> None:
    pytest.importorskip("ai_edge_litert")
    from keras_pvt.export import TFLiteRunner, convert_to_tflite

    result = convert_to_tflite(model, tmp_path / "b2_li.tflite", verify=False)
    assert result.input_shape == DYNAMIC and result.verification is None
    runner = TFLiteRunner(result.path, threads=2)
    assert runner.input_shape == DYNAMIC
    _assert_matches_timm(runner, "TFLite")


@pytest.mark.slow
def test_openvino_ir_matches_timm(model, tmp_path) -> None:
    pytest.importorskip("openvino")
    from keras_pvt.export import export_openvino
    from keras_pvt.export.openvino_run import OpenVINORunner

    result = export_openvino(model, tmp_path / "b2_li.xml", precision="float32", verify=False)
    assert result.input_shape == DYNAMIC and result.verification is None
    runner = OpenVINORunner(result.path, threads=2, inference_precision="float32")
    assert runner.input_shape == DYNAMIC
    _assert_matches_timm(runner, "OpenVINO")
