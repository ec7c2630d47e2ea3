"""keras-pvt on JAX and PyTorch as well as TensorFlow, and the TensorFlow-only parts without it.

The `all_backends` tests run in every lane (`make test-backends`: KERAS_BACKEND=jax and torch):
Li models compiled (JAX's jit) for predict and fit, `compile_inference` on each backend, the JAX
speed table, both branches of the adaptive pool and `.keras` files saved under another backend.
The others run in the TensorFlow lane, in fresh processes where TensorFlow cannot be imported:
`import keras_pvt` loads no TensorFlow there, and the TensorFlow-only parts say so in one line.
One fresh process per backend (`_fresh_backend_worker.py`) checks all of that backend's facts and
saves its `.keras` file, each fact reported under its name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_pvt import PVT_V2, compile_inference
from keras_pvt.layers.pooling import adaptive_pool_matrix
from keras_pvt.rewrites import XLA, rewritten

from helpers import tiny_config

REPO = Path(__file__).resolve().parents[1]
BACKEND = keras.backend.backend()
F32_TOL = {"rtol": 1e-4, "atol": 1e-5}
# On each backend, an engine compile_inference has and one it refuses (None: it has them all).
ENGINES = {"tensorflow": ("xla", None), "jax": ("xla", "openvino"), "torch": ("plain", "xla")}
# Where the cross-backend `.keras` files come from: the TensorFlow lane loads JAX's and PyTorch's,
# the others load TensorFlow's (the default backend users save with).
SAVED_UNDER = ["jax", "torch"] if BACKEND == "tensorflow" else ["tensorflow"]
INSTALL = "install it with `pip install tensorflow`."
# A fresh interpreter in which `import tensorflow` fails as it does where TensorFlow is absent.
BLOCK_TENSORFLOW = """
import sys

sys.modules["tensorflow"] = None  # `import tensorflow` raises ImportError, find_spec gives None
"""


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _images(rng: np.random.Generator, batch: int = 2, height: int = 64, width: int = 48) -> np.ndarray:
    return rng.normal(size=(batch, height, width, 3)).astype("float32")


# ------------------------------------------------------------------ models compiled by the backend
@pytest.mark.all_backends
@pytest.mark.slow  # compiling a training step costs seconds on every backend
def test_li_model_compiled_predict_evaluate_and_fit(rng):
    """On JAX `predict`, `evaluate` and `fit` jit the Li model's adaptive pool (static sizes)."""
    model = PVT_V2(tiny_config(linear=True), classifier_activation=None)
    images, labels = _images(rng), np.array([1, 7])
    eager = _numpy(model(images, training=False))
    np.testing.assert_allclose(model.predict(images, verbose=0), eager, **F32_TOL)
    model.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(images, labels, batch_size=2, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert np.isfinite(model.evaluate(images, labels, verbose=0))


@pytest.mark.all_backends
@pytest.mark.parametrize("size", [1, 5, 7, 9, 23])
def test_adaptive_pool_static_and_run_time_sizes_give_the_same_matrix(size):
    static = adaptive_pool_matrix(size, 7)
    run_time = adaptive_pool_matrix(keras.ops.convert_to_tensor(size, "int32"), 7)
    np.testing.assert_allclose(_numpy(static), _numpy(run_time), rtol=0, atol=1e-7)
    np.testing.assert_allclose(_numpy(static).sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.all_backends
def test_xla_rewrite_equals_the_plain_model_on_every_backend(rng):
    model = PVT_V2(tiny_config(), include_top=False)
    images = _images(rng, 1, 64, 64)
    fast = _numpy(rewritten(model, XLA)(images, training=False))
    np.testing.assert_allclose(fast, _numpy(model(images, training=False)), **F32_TOL)


# ------------------------------------------------------------------ compile_inference
@pytest.mark.all_backends
@pytest.mark.slow  # compiles the model (XLA on TensorFlow and JAX)
@pytest.mark.parametrize("linear", [False, True])
def test_compile_inference_equals_the_model(linear, rng):
    engine = ENGINES[BACKEND][0]
    model = PVT_V2(tiny_config(linear=linear), classifier_activation=None)
    predict = compile_inference(model, engine=engine)
    for images in (_images(rng), _images(rng, 1, 64, 64)):
        got = predict(images)
        assert keras.backend.standardize_dtype(got.dtype) == "float32"
        np.testing.assert_allclose(_numpy(got), _numpy(model(images, training=False)), **F32_TOL)
    assert predict.model is model


@pytest.mark.all_backends
@pytest.mark.slow  # compiles the model (XLA on TensorFlow and JAX)
def test_compile_inference_of_stage_maps_follows_weights_unless_frozen(rng):
    model = PVT_V2(tiny_config(), features_only=True)
    live = compile_inference(model, freeze_weights=False)
    frozen = compile_inference(model, freeze_weights=True)
    images = _images(rng)
    expected = {name: _numpy(value) for name, value in model(images, training=False).items()}
    for predict in (live, frozen):
        outputs = predict(images)
        assert sorted(outputs) == ["stage1", "stage2", "stage3", "stage4"]
        for name, value in expected.items():
            np.testing.assert_allclose(_numpy(outputs[name]), value, **F32_TOL)
    model.set_weights([w * 1.5 for w in model.get_weights()])
    updated = _numpy(model(images, training=False)["stage4"])
    assert not np.allclose(updated, expected["stage4"], **F32_TOL)
    np.testing.assert_allclose(_numpy(live(images)["stage4"]), updated, **F32_TOL)
    np.testing.assert_allclose(_numpy(frozen(images)["stage4"]), expected["stage4"], **F32_TOL)


@pytest.mark.all_backends
def test_compile_inference_refuses_clearly_on_every_backend(rng):
    model = PVT_V2(tiny_config())
    _, missing = ENGINES[BACKEND]
    if missing is not None:
        with pytest.raises(ValueError, match=rf"engine='{missing}'.*needs the TensorFlow backend"):
            compile_inference(model, engine=missing)
        with pytest.raises(ValueError, match=r"precision='bfloat16'.*needs the TensorFlow backend"):
            compile_inference(model, precision="bfloat16")
    predict = compile_inference(model)
    with pytest.raises(ValueError, match=r"uint8 images.*no preprocessing inside"):
        predict(np.zeros((1, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="too small"):
        predict(np.zeros((1, 16, 64, 3), np.float32))
    with pytest.raises(ValueError, match="channels-last"):
        predict(np.zeros((1, 3, 64, 64), np.float32))


# ------------------------------------------------------------------ fresh processes
@pytest.fixture(scope="session")
def fresh_process(tmp_path_factory):
    """`fresh_process(backend)`: the facts `_fresh_backend_worker.py` reports from one fresh process
    on that backend (run once per backend and session). On JAX and PyTorch TensorFlow cannot be
    imported there; the process then also checks what works without it (JAX: the CLI too)."""
    reports: dict[str, dict] = {}

    def run(backend: str) -> dict:
        if backend not in reports:
            folder = tmp_path_factory.mktemp(f"fresh_{backend}")
            facts, path = [], [str(REPO)]
            if backend != "tensorflow":
                facts = ["without_tensorflow", "cli"] if backend == "jax" else ["without_tensorflow"]
                (folder / "sitecustomize.py").write_text(BLOCK_TENSORFLOW)
                path.insert(0, str(folder))
            # XLA's LLVM at -O0 compiles JAX's ops ~3x faster, same results (as in `make test-backends`)
            xla = {"XLA_FLAGS": os.environ.get("XLA_FLAGS", "--xla_backend_optimization_level=0")}
            xla = xla if backend == "jax" else {}
            result = subprocess.run(
                [sys.executable, str(REPO / "tests" / "_fresh_backend_worker.py"), str(folder), *facts],
                env={
                    **os.environ,
                    "TF_CPP_MIN_LOG_LEVEL": "3",
                    **xla,
                    "KERAS_BACKEND": backend,
                    "PYTHONPATH": os.pathsep.join(path),
                },
                capture_output=True,
                text=True,
                cwd=folder,
                timeout=600,  # one process checks several facts
            )
            assert result.returncode == 0, f"the fresh {backend} process failed:\n{result.stderr[-3000:]}"
            reports[backend] = json.loads(result.stdout.strip().splitlines()[-1])
        return reports[backend]

    return run


def _fact(fresh_process, backend: str, name: str):
    """The value of one fact of the fresh `backend` process; fails naming the fact if it raised."""
    report = fresh_process(backend)[name]
    assert "error" not in report, f"{name!r} failed in the fresh {backend} process:\n{report.get('error')}"
    return report["value"]


# ------------------------------------------------------------------ .keras files across backends
@pytest.mark.all_backends
@pytest.mark.slow  # a fresh process on another backend
@pytest.mark.parametrize("saved_under", SAVED_UNDER)
def test_keras_file_saved_under_another_backend_gives_the_same_outputs(saved_under, fresh_process):
    folder = Path(_fact(fresh_process, saved_under, "saved"))
    model = keras.models.load_model(folder / "model.keras", safe_mode=True)
    images = np.load(folder / "images.npy")
    np.testing.assert_allclose(_numpy(model(images)), np.load(folder / "outputs.npy"), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.predict(images, verbose=0), np.load(folder / "outputs.npy"), **F32_TOL)


# ------------------------------------------------------------------ without TensorFlow (TF lane)
@pytest.mark.slow  # a fresh process (shared with the .keras file saved under that backend)
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_keras_pvt_imports_and_runs_without_tensorflow(backend, fresh_process):
    report = _fact(fresh_process, backend, "without_tensorflow")
    assert report == {"shape": [1, 10], "tensorflow_modules": []}


@pytest.mark.slow  # a fresh process (the JAX one above)
def test_tensorflow_only_parts_say_so_in_one_line(fresh_process):
    report = _fact(fresh_process, "jax", "cli")
    for name in ("keras_pvt.training", "keras_pvt.data", "keras_pvt.export"):
        kind, message = report["imports"][name]
        assert kind == "TensorFlowRequiredError"
        assert message == f"{name} needs TensorFlow, which is not installed here; {INSTALL}"
    for argv in ("train", "export model.keras", "demo", "train --help"):
        code, stderr, _ = report["commands"][argv]
        command = argv.split()[0]
        assert code == 2
        assert stderr.splitlines() == [
            f"keras-pvt {command}: error: keras-pvt {command} needs TensorFlow, which is not installed here; "
            + INSTALL
        ]
    code, stderr, printed = report["commands"]["variants"]
    assert (code, stderr) == (0, "") and printed > 0


def test_every_cli_subcommand_is_listed_with_its_tensorflow_need():
    import importlib
    import pkgutil

    from keras_pvt import cli

    modules = [info.name for info in pkgutil.iter_modules(cli.__path__)]
    commands = [
        name for name in modules if hasattr(importlib.import_module(f"keras_pvt.cli.{name}"), "register")
    ]
    assert sorted(commands) == sorted(cli.COMMANDS)
    assert {name for name, needs in cli.COMMANDS.items() if needs} == {"demo", "export", "train"}
