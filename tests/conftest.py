"""Shared test settings: quiet TensorFlow, deterministic seeds, small configs, the backend lanes.

Under ``KERAS_BACKEND=jax`` or ``torch`` only the tests marked ``all_backends`` run: the others are
skipped with a reason, and test modules holding no such test are not even imported (most of them
import TensorFlow). `make test-backends` runs those lanes. ``KERAS_PVT_ALL_TESTS=1`` runs every test
on any backend (to find out what else works there).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()
# Whether only the all_backends tests run (JAX, PyTorch), unless KERAS_PVT_ALL_TESTS asks for all.
ONLY_ALL_BACKENDS = BACKEND != "tensorflow" and os.environ.get("KERAS_PVT_ALL_TESTS") != "1"
ALL_BACKENDS = "all_backends"
_NOT_COLLECTED: list[str] = []


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """On JAX and PyTorch, skip importing test modules that hold no `all_backends` test (cheap)."""
    if not ONLY_ALL_BACKENDS or collection_path.suffix != ".py":
        return None
    if not collection_path.name.startswith("test_"):
        return None
    if ALL_BACKENDS in collection_path.read_text(encoding="utf-8"):
        return None
    _NOT_COLLECTED.append(collection_path.name)
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On JAX and PyTorch, skip (with the reason) every test not marked `all_backends`."""
    if not ONLY_ALL_BACKENDS:
        return
    skip = pytest.mark.skip(reason=f"TensorFlow-only: KERAS_BACKEND={BACKEND} runs only all_backends tests")
    for item in items:
        if item.get_closest_marker(ALL_BACKENDS) is None:
            item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> str:
    lane = "only the tests marked all_backends" if ONLY_ALL_BACKENDS else "every test"
    return f"keras backend: {BACKEND} ({lane})"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _NOT_COLLECTED:
        terminalreporter.write_line(
            f"KERAS_BACKEND={BACKEND}: {len(_NOT_COLLECTED)} TensorFlow-only test modules not collected "
            f"(no all_backends test): {', '.join(sorted(_NOT_COLLECTED))}"
        )


@pytest.fixture(autouse=True)
def _seed() -> None:
    keras.utils.set_random_seed(0)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
