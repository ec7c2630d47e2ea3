"""The one place that says a part of keras-pvt needs TensorFlow, in one line, when it is not there.

The model, its layers, checkpoints and `.keras` files work on every Keras backend;
`keras_pvt.training`, `keras_pvt.data`, `keras_pvt.export` and the `train`, `export` and `demo`
commands need TensorFlow. Their packages call `require_tensorflow` before importing it, and the CLI
asks `tensorflow_problem` before importing such a command. The optional OpenVINO and pycocotools
(COCO mAP: detection evaluation and training) are checked here too.
"""

from __future__ import annotations

import keras

INSTALL_HINT = "pip install tensorflow"
OPENVINO_INSTALL_HINT = 'pip install "keras-pvt[openvino]"'
PYCOCOTOOLS_INSTALL_HINT = "pip install 'keras-pvt[detection]'"


class TensorFlowRequiredError(ImportError):
    """A TensorFlow-only part of keras-pvt was used where TensorFlow cannot be imported."""


class OpenVINORequiredError(ImportError):
    """An OpenVINO export or engine of keras-pvt was used where `openvino` cannot be imported."""


class PycocotoolsRequiredError(ImportError):
    """COCO mAP (detection evaluation and training) was used where `pycocotools` cannot be imported."""


def _tensorflow_importable() -> bool:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def tensorflow_problem(what: str, backend: bool = False) -> str | None:
    """None if `what` can run here, else one line: that it needs TensorFlow, and how to get it.

    With `backend`, `what` also needs TensorFlow to be Keras' backend (not only importable).
    """
    if not _tensorflow_importable():
        return f"{what} needs TensorFlow, which is not installed here; install it with `{INSTALL_HINT}`."
    if backend and keras.backend.backend() != "tensorflow":
        return (
            f"{what} needs TensorFlow as Keras' backend, but Keras runs on {keras.backend.backend()!r}; "
            "run it with KERAS_BACKEND=tensorflow."
        )
    return None


def require_tensorflow(what: str) -> None:
    """Raise `TensorFlowRequiredError` (an ImportError) naming `what` if TensorFlow cannot be imported."""
    problem = tensorflow_problem(what)
    if problem is not None:
        raise TensorFlowRequiredError(problem)


def openvino_problem(what: str) -> str | None:
    """None if `openvino` imports here, else one line: that `what` needs it, and how to get it."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return f"{what} needs OpenVINO, which is not installed here; install it: `{OPENVINO_INSTALL_HINT}`."
    return None


def require_openvino(what: str) -> None:
    """Raise `OpenVINORequiredError` (an ImportError) naming `what` if `openvino` cannot be imported."""
    problem = openvino_problem(what)
    if problem is not None:
        raise OpenVINORequiredError(problem)


def pycocotools_problem(what: str) -> str | None:
    """None if `pycocotools` imports here, else one line: that `what` needs it, and how to get it."""
    try:
        import pycocotools.coco
        import pycocotools.cocoeval  # noqa: F401
    except ImportError:
        return (
            f"{what} needs pycocotools (the optional `detection` extra), which is not installed here; "
            f"install it: `{PYCOCOTOOLS_INSTALL_HINT}` (or pip install pycocotools)."
        )
    return None


def require_pycocotools(what: str) -> None:
    """Raise `PycocotoolsRequiredError` (an ImportError) naming `what` if `pycocotools` cannot be imported."""
    problem = pycocotools_problem(what)
    if problem is not None:
        raise PycocotoolsRequiredError(problem)
