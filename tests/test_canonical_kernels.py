"""The canonical kernel table (`kernels.canonical`) computes the plain table's maths to float32 round-off."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

import keras_pvt.kernels as kernels
from keras_pvt import PVT_V2
from keras_pvt.kernels.canonical import CANONICAL
from keras_pvt.kernels.plain import PLAIN

from helpers import tiny_config

pytestmark = pytest.mark.all_backends


@pytest.mark.parametrize("affine", [True, False])
def test_normalize_equals_plain(affine):
    rng = np.random.default_rng(0)
    x = ops.convert_to_tensor((rng.standard_normal((2, 5, 7, 12)) * 3 + 2).astype(np.float32))
    gamma = ops.convert_to_tensor(rng.standard_normal(12).astype(np.float32)) if affine else None
    beta = ops.convert_to_tensor(rng.standard_normal(12).astype(np.float32)) if affine else None
    plain = keras.ops.convert_to_numpy(PLAIN.normalize(x, gamma, beta, 1e-6))
    canonical = keras.ops.convert_to_numpy(CANONICAL.normalize(x, gamma, beta, 1e-6))
    assert canonical.shape == (2, 5, 7, 12)
    np.testing.assert_allclose(canonical, plain, rtol=0, atol=2e-5)


def _maps(outputs) -> list[np.ndarray]:
    values = [outputs[k] for k in sorted(outputs)] if isinstance(outputs, dict) else list(outputs)
    return [keras.ops.convert_to_numpy(y) for y in values]


def test_model_outputs_equal_plain_on_an_odd_size():
    model = PVT_V2(tiny_config(), weights=None, features_only=True)  # unnormalised maps, not softmax
    images = np.random.default_rng(1).standard_normal((2, 45, 61, 3)).astype(np.float32)
    with kernels.use(PLAIN):
        plain = _maps(model(images, training=False))
    with kernels.use(CANONICAL):
        canonical = _maps(model(images, training=False))
    assert len(plain) == 4
    for ours, reference in zip(canonical, plain):
        assert np.isfinite(ours).all() and np.abs(reference).max() > 0.1
        np.testing.assert_allclose(ours, reference, rtol=0, atol=3e-5)
