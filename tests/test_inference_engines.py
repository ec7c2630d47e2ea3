"""`compile_inference(..., engine=...)` (keras_pvt.engines): every engine equals the model, each input
shape is converted once, and bad combinations are refused (no timing here)."""

from __future__ import annotations

import json
import threading

import keras
import numpy as np
import pytest

from keras_pvt import PVT_V2
from keras_pvt.inference import compile_inference
from keras_pvt.inference.checks import check_engine

from helpers import tiny_config

BACKEND = keras.backend.backend()
F32_TOL = {"rtol": 1e-4, "atol": 1e-5}
tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="the engines need TensorFlow")


def _images(batch: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, height, width, 3)).astype("float32")


def _assert_same_outputs(outputs, model, images) -> None:
    expected = model(images, training=False)
    if isinstance(expected, dict):
        assert isinstance(outputs, dict) and sorted(outputs) == sorted(expected)
        for name, value in expected.items():
            np.testing.assert_allclose(np.asarray(outputs[name]), np.asarray(value), **F32_TOL)
    else:
        assert not isinstance(outputs, (dict, list))
        np.testing.assert_allclose(np.asarray(outputs), np.asarray(expected), **F32_TOL)


@pytest.fixture(scope="module")
def classifier() -> keras.Model:
    keras.utils.set_random_seed(1)
    return PVT_V2(tiny_config(), classifier_activation=None)  # logits: stricter than probabilities


def _small_cnn(outputs: int = 1) -> keras.Model:
    """A two-layer Keras CNN: converts in a fraction of a PVT's time, for the engines' own logic
    (per-shape cache, threads, snapshot, choices file); the PVT's layers are checked on every engine
    in the "measure" test."""
    inputs = keras.Input((None, None, 3), name="images")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="gelu", name="conv")(inputs)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="norm")(x)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    logits = keras.layers.Dense(4, name="predictions")(pooled)
    if outputs == 1:
        return keras.Model(inputs, logits, name="small_cnn")
    return keras.Model(inputs, {"predictions": logits, "map": x}, name="small_cnn_two")


@pytest.fixture(scope="module")
def cnn() -> keras.Model:
    keras.utils.set_random_seed(3)
    return _small_cnn()


@pytest.fixture(scope="module")
def features() -> keras.Model:
    keras.utils.set_random_seed(2)
    return PVT_V2(tiny_config(), features_only=True)


@pytest.fixture
def openvino_conversion():
    """Skips the test where OpenVINO (the `openvino` extra) is not installed."""
    pytest.importorskip("openvino", reason="engine='openvino' needs keras-pvt[openvino]")


# ------------------------------------------------------------------ refusals (no conversion)
BAD_COMBINATIONS = [
    ({"engine": "tflite"}, r"`engine` must be one of"),
    ({"engine": "litert", "precision": "bfloat16"}, r"float32 files only"),
    ({"engine": "measure", "precision": "bfloat16"}, r"float32 files only"),
    ({"engine": "xla", "precision": "bfloat16"}, r"runs on engine='plain'"),
    ({"engine": "litert", "freeze_weights": False}, r"leave freeze_weights out"),
    ({"engine": "openvino", "freeze_weights": False}, r"leave freeze_weights out"),
    ({"engine": "measure", "freeze_weights": False}, r"leave freeze_weights out"),
    ({"engine": "litert", "strategy": "xla"}, r"old spelling of `engine`"),
    ({"strategy": "segmented"}, r"`strategy` must be one of"),
    ({"engine": "xla", "threads": 2}, r"`threads` applies to engine='litert'"),
    ({"engine": "plain", "engine_cache": "choices.json"}, r"choices of engine='measure'"),
    ({"engine": "litert", "engine_cache": "c.json"}, r"choices of engine='measure'"),
    ({"engine": "openvino", "freeze_weights": True, "threads": 0}, r"positive int"),
    ({"engine": "openvino", "freeze_weights": True, "threads": np.float64(2)}, r"positive int"),
    ({"engine": "openvino", "freeze_weights": True, "threads": np.bool_(True)}, r"positive int"),
]


@tensorflow_only
@pytest.mark.parametrize(("kwargs", "message"), BAD_COMBINATIONS)
def test_bad_engine_combinations_are_refused_before_any_work(classifier, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compile_inference(classifier, **kwargs)


@pytest.mark.all_backends
def test_engines_other_than_the_backend_need_tensorflow():
    for engine in ("litert", "openvino", "measure"):
        with pytest.raises(ValueError, match=rf"engine='{engine}'.*needs the TensorFlow backend"):
            check_engine(engine, "jax", "float32", True, None, None)
    with pytest.raises(ValueError, match=r"engine='xla'.*needs the TensorFlow backend"):
        check_engine("xla", "torch", "float32", None, None, None)
    check_engine("xla", "jax", "float32", False, None, None)
    check_engine("plain", "torch", "float32", False, None, None)
    if BACKEND != "tensorflow":
        with pytest.raises(ValueError, match="needs the TensorFlow backend"):
            compile_inference(PVT_V2(tiny_config()), freeze_weights=True, engine="litert")


@tensorflow_only
def test_engine_cache_never_replaces_a_file_keras_pvt_did_not_write(classifier, tmp_path):
    from keras_pvt._safe_write import OutputRefusedError

    user_file = tmp_path / "settings.json"
    user_file.write_text('{"mine": 1}\n')
    with pytest.raises(OutputRefusedError, match=r"settings\.json' is a file that is not keras-pvt's JSON"):
        compile_inference(classifier, freeze_weights=True, engine="measure", engine_cache=user_file)
    assert user_file.read_text() == '{"mine": 1}\n'


@tensorflow_only
def test_an_empty_file_of_the_users_as_engine_cache_is_never_replaced(cnn, tmp_path):
    from keras_pvt._safe_write import OutputRefusedError
    from keras_pvt.engines.choices import ChoicesFile

    empty = tmp_path / "choices.json"
    empty.touch()
    before = empty.stat()
    fix = r"never replaces a file it did not write\. Pass a path that does not exist yet"
    with pytest.raises(OutputRefusedError, match=rf"engine_cache='.*choices\.json' is an empty file.*{fix}"):
        compile_inference(cnn, freeze_weights=True, engine="measure", threads=1, engine_cache=empty)
    choices = ChoicesFile(tmp_path / "ours.json", cnn, threads=1)
    choices.record((1, 8, 8, 3), "xla", {"xla": 1.0})  # ours: written, and replaced when recording again
    choices.path = empty  # a user's file standing where a choice is recorded: refused there too
    with pytest.raises(OutputRefusedError, match="is an empty file"):
        choices.record((1, 8, 8, 3), "xla", {"xla": 1.0})
    after = empty.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )
    ChoicesFile(tmp_path / "ours.json", cnn, threads=1).record((1, 16, 16, 3), "xla", {"xla": 1.0})
    assert len(json.loads((tmp_path / "ours.json").read_text())["choices"]) == 2


@tensorflow_only
def test_an_empty_batch_into_the_litert_engine_says_the_batch_is_empty(cnn):
    pytest.importorskip("ai_edge_litert", reason="engine='litert' needs keras-pvt[export]")
    predict = compile_inference(cnn, freeze_weights=True, engine="litert", threads=np.int64(1))
    with pytest.raises(ValueError, match=r"Got an empty batch \(shape \(0, 32, 32, 3\)\)") as info:
        predict(np.zeros((0, 32, 32, 3), "float32"))
    assert "batch_size" not in str(info.value) and predict.conversions == 0
    assert predict.threads == 1 and type(predict.threads) is int


# ------------------------------------------------------------------ each engine equals the model
@tensorflow_only
@pytest.mark.parametrize("engine", ["xla", "plain"])
def test_tensorflow_engines_are_those_paths_on_the_models_variables(engine):
    model = _small_cnn()
    predict = compile_inference(model, engine=engine)
    images = _images(2, 32, 48)
    _assert_same_outputs(predict(images), model, images)
    model.set_weights([w * 1.5 for w in model.get_weights()])  # no snapshot: it follows the model
    _assert_same_outputs(predict(images), model, images)


@tensorflow_only
@pytest.mark.slow
def test_litert_engine_converts_each_shape_once_and_runs_a_snapshot():
    model = _small_cnn()
    predict = compile_inference(model, freeze_weights=True, engine="litert", threads=1)
    one, two = _images(1, 32, 32), _images(2, 32, 32, seed=1)
    expected_two = model(two, training=False)
    _assert_same_outputs(predict(one), model, one)
    _assert_same_outputs(predict(one[::-1]), model, one[::-1])
    assert predict.conversions == 1  # the same shape again: no new conversion
    model.set_weights([w * 1.5 for w in model.get_weights()])  # the engine keeps the snapshot
    results = [None, None]

    def call(index: int) -> None:
        results[index] = predict(two).numpy()

    workers = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert predict.conversions == 2  # a new shape (batch 2) converts once, however many threads
    for result in results:
        np.testing.assert_allclose(result, np.asarray(expected_two), **F32_TOL)
    assert predict.chosen == {(1, 32, 32, 3): "litert", (2, 32, 32, 3): "litert"}


@tensorflow_only
@pytest.mark.slow
def test_openvino_engine_converts_each_shape_once(openvino_conversion):
    model = _small_cnn(outputs=2)
    predict = compile_inference(model, freeze_weights=True, engine="openvino", threads=1)
    one, two = _images(1, 32, 48), _images(2, 32, 48)
    _assert_same_outputs(predict(one), model, one)
    _assert_same_outputs(predict(one + 1), model, one + 1)
    assert predict.conversions == 1
    _assert_same_outputs(predict(two), model, two)
    assert predict.conversions == 2


@tensorflow_only
@pytest.mark.slow
def test_measure_engine_checks_every_engine_on_stage_maps_and_keeps_the_fastest(
    features, tmp_path, openvino_conversion
):
    choices = tmp_path / "engine_choices.json"
    predict = compile_inference(features, freeze_weights=True, engine="measure", engine_cache=choices)
    assert set(predict.candidates) == {"xla", "litert", "openvino"}
    images = _images(1, 64, 96)
    _assert_same_outputs(predict(images), features, images)
    shape = (1, 64, 96, 3)
    # Every engine ran the PVT's stage maps (a features_only model's dict) to float32 round-off.
    differences = predict.differences[shape]
    assert set(differences) == set(predict.candidates)
    for engine, difference in differences.items():
        assert difference < 1e-4, engine
    chosen, timings = predict.chosen[shape], predict.timings[shape]
    assert set(timings) == set(predict.candidates) and min(timings, key=timings.get) == chosen
    assert predict.conversions == 2  # the LiteRT and OpenVINO candidates, once each
    [entry] = json.loads(choices.read_text())["choices"].values()
    assert entry["engine"] == chosen


@tensorflow_only
def test_measure_engine_builds_only_the_engine_its_cache_file_names(cnn, tmp_path):
    from keras_pvt.engines.choices import ChoicesFile

    choices, shape = tmp_path / "engine_choices.json", (1, 32, 32, 3)
    ChoicesFile(choices, cnn, threads=1).record(shape, "litert", {"litert": 1.0, "xla": 2.0})
    predict = compile_inference(cnn, freeze_weights=True, engine="measure", threads=1, engine_cache=choices)
    images = _images(*shape[:3])
    _assert_same_outputs(predict(images), cnn, images)
    assert predict.chosen == {shape: "litert"} and predict.timings == {}  # read, not measured
    assert predict.conversions == 1  # only the engine the file names was built
