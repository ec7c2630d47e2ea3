"""Subprocess body of tests/test_backends.py: one fresh interpreter on the backend KERAS_BACKEND names
checks several facts, each reported under its own name in the JSON line it prints last
(``{"fact": {"value": ...}}``, or ``{"fact": {"error": traceback}}`` so that the test names it).

usage: python _fresh_backend_worker.py FOLDER [without_tensorflow] [cli]
  always, "saved": a tiny Li model saved as FOLDER/model.keras, its input images (images.npy) and
  its outputs on this backend (outputs.npy), for the other backends to load.
  "without_tensorflow": a model built and run with `compile_inference`; the output shape and the
  TensorFlow modules loaded (none, where TensorFlow cannot be imported).
  "cli": the TensorFlow-only parts where TensorFlow cannot be imported: each import's error, and
  each command's exit code, stderr and stdout length.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from helpers import tiny_config

FOLDER = Path(sys.argv[1])
FACTS = sys.argv[2:]


def saved() -> str:
    from keras_pvt import PVT_V2

    keras.utils.set_random_seed(1)
    model = PVT_V2(tiny_config(linear=True, drop_path_rate=0.1), classifier_activation=None)
    images = np.random.default_rng(1).normal(size=(2, 57, 75, 3)).astype("float32")
    model.save(FOLDER / "model.keras")
    np.save(FOLDER / "images.npy", images)
    np.save(FOLDER / "outputs.npy", keras.ops.convert_to_numpy(model(images)))
    return str(FOLDER)


def without_tensorflow() -> dict[str, Any]:
    import keras_pvt

    model = keras_pvt.PVT_V2(tiny_config(linear=True))
    images = np.zeros((1, 40, 40, 3), "float32")
    probs = keras.ops.convert_to_numpy(keras_pvt.compile_inference(model)(images))
    loaded = [m for m, v in sys.modules.items() if v is not None and m.split(".")[0] == "tensorflow"]
    return {"shape": list(probs.shape), "tensorflow_modules": loaded}


def cli() -> dict[str, Any]:
    from keras_pvt.cli import main

    imports = {}
    for name in ("keras_pvt.training", "keras_pvt.data", "keras_pvt.export"):
        try:
            importlib.import_module(name)
        except ImportError as error:
            imports[name] = [type(error).__name__, str(error)]
    commands = {}
    for argv in (["train"], ["export", "model.keras"], ["demo"], ["train", "--help"], ["variants"]):
        stderr, stdout = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            try:
                code = main(argv)
            except SystemExit as exit:
                code = exit.code
        commands[" ".join(argv)] = [code, stderr.getvalue(), len(stdout.getvalue())]
    return {"imports": imports, "commands": commands}


def _checked(fact: Callable[[], Any]) -> dict[str, Any]:
    try:
        return {"value": fact()}
    except Exception:  # reported under the fact's name; the other facts still run
        return {"error": traceback.format_exc()}


CHECKS = {"saved": saved, "without_tensorflow": without_tensorflow, "cli": cli}
print(json.dumps({name: _checked(CHECKS[name]) for name in ["saved", *FACTS]}))
