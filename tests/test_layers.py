"""Layers: adaptive pooling against PyTorch's rule, drop path, shapes, config round trips."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_pvt.layers import (
    AdaptiveAveragePooling2D,
    ConvMlp,
    DropPath,
    LayerNorm,
    OverlapPatchEmbed,
    PVTBlock,
    PVTStage,
    SpatialReductionAttention,
)


def torch_adaptive_avg_pool(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """NumPy transcription of PyTorch's adaptive_avg_pool2d window rule (NHWC)."""
    _, height, width, _ = x.shape
    out = np.zeros((x.shape[0], out_h, out_w, x.shape[3]), np.float64)
    for i in range(out_h):
        h0, h1 = (i * height) // out_h, math.ceil((i + 1) * height / out_h)
        for j in range(out_w):
            w0, w1 = (j * width) // out_w, math.ceil((j + 1) * width / out_w)
            out[:, i, j] = x[:, h0:h1, w0:w1].mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("size", list(range(1, 71)))
def test_adaptive_pool_matches_pytorch_rule_square(size, rng):
    x = rng.standard_normal((2, size, size, 3)).astype("float32")
    got = AdaptiveAveragePooling2D(7)(x)
    np.testing.assert_allclose(got, torch_adaptive_avg_pool(x, 7, 7), rtol=1e-5, atol=1e-5)


@pytest.mark.all_backends
@pytest.mark.parametrize(("height", "width"), [(5, 23), (13, 8), (29, 61), (70, 9), (1, 44)])
def test_adaptive_pool_non_square_and_other_output_sizes(height, width, rng):
    x = rng.standard_normal((1, height, width, 4)).astype("float32")
    got = keras.ops.convert_to_numpy(AdaptiveAveragePooling2D((7, 7))(x))
    np.testing.assert_allclose(got, torch_adaptive_avg_pool(x, 7, 7), rtol=1e-5, atol=1e-5)
    got = keras.ops.convert_to_numpy(AdaptiveAveragePooling2D((3, 5))(x))
    np.testing.assert_allclose(got, torch_adaptive_avg_pool(x, 3, 5), rtol=1e-5, atol=1e-5)


def test_adaptive_pool_with_sizes_known_only_at_run_time(rng):
    layer = AdaptiveAveragePooling2D(7)
    fn = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 2), tf.float32)])
    for height, width in [(9, 11), (56, 56), (3, 100)]:
        x = rng.standard_normal((2, height, width, 2)).astype("float32")
        np.testing.assert_allclose(fn(x), torch_adaptive_avg_pool(x, 7, 7), rtol=1e-5, atol=1e-5)


def test_drop_path_is_identity_at_inference_and_drops_in_training():
    layer = DropPath(0.5, seed=1)
    x = np.ones((256, 4, 4, 2), "float32")
    np.testing.assert_array_equal(layer(x, training=False), x)
    np.testing.assert_array_equal(layer(x), x)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    per_sample = out.reshape(256, -1)
    # Each sample is kept whole (scaled by 1/keep) or dropped whole.
    assert set(np.unique(per_sample)) <= {0.0, 2.0}
    assert np.all(per_sample.min(axis=1) == per_sample.max(axis=1))
    kept = (per_sample[:, 0] > 0).mean()
    assert 0.35 < kept < 0.65
    np.testing.assert_array_equal(DropPath(0.0)(x, training=True), x)


def test_drop_path_rejects_bad_rate():
    with pytest.raises(ValueError, match=r"rate.*\[0, 1\)"):
        DropPath(1.0)


def test_patch_embed_padding_is_symmetric(rng):
    # A delta in the top-left corner must reach output (0, 0) through kernel tap (3, 3): pad 3 per side.
    layer = OverlapPatchEmbed(4, patch_size=7, stride=4)
    x = np.zeros((1, 17, 17, 3), "float32")
    layer.build(x.shape)
    kernel = np.zeros((7, 7, 3, 4), "float32")
    kernel[3, 3, 0, 0] = 1.0
    layer.proj.kernel.assign(kernel)
    layer.proj.bias.assign(np.zeros(4, "float32"))
    x[0, 0, 0, 0] = 1.0
    raw = layer.proj(layer.pad(x))
    assert raw.shape == (1, 5, 5, 4)
    assert float(raw[0, 0, 0, 0]) == 1.0 and float(keras.ops.sum(raw)) == 1.0
    assert layer.norm.epsilon == 1e-5


@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("sr_ratio", [1, 2])
def test_attention_shapes_and_dynamic_sizes(linear, sr_ratio, rng):
    layer = SpatialReductionAttention(12, num_heads=3, sr_ratio=sr_ratio, linear=linear)
    fn = tf.function(lambda t: layer(t), input_signature=[tf.TensorSpec((None, None, None, 12))])
    for shape in [(2, 6, 10, 12), (1, 3, 3, 12), (1, 11, 5, 12)]:
        x = rng.standard_normal(shape).astype("float32")
        eager = layer(x)
        assert eager.shape == shape
        np.testing.assert_allclose(fn(x), eager, rtol=1e-5, atol=1e-5)
    if linear or sr_ratio > 1:
        assert layer.norm.epsilon == 1e-5


def test_attention_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="divisible"):
        SpatialReductionAttention(10, num_heads=3)


def test_attention_matches_plain_numpy(rng):
    """Reduction-free attention against a direct NumPy formula (2 heads, qk_scale)."""
    layer = SpatialReductionAttention(8, num_heads=2, qk_scale=0.3)
    x = rng.standard_normal((1, 3, 4, 8)).astype("float32")
    got = keras.ops.convert_to_numpy(layer(x))
    tokens = x.reshape(1, 12, 8)
    q = tokens @ layer.q.kernel.numpy() + layer.q.bias.numpy()
    kv = tokens @ layer.kv.kernel.numpy() + layer.kv.bias.numpy()
    k, v = kv[..., :8], kv[..., 8:]
    heads = []
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        scores = 0.3 * q[0, :, sl] @ k[0, :, sl].T
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        heads.append(weights @ v[0, :, sl])
    want = np.concatenate(heads, -1) @ layer.proj.kernel.numpy() + layer.proj.bias.numpy()
    np.testing.assert_allclose(got.reshape(12, 8), want, rtol=1e-4, atol=1e-5)


def test_mlp_gelu_is_exact_erf(rng):
    layer = ConvMlp(8, 4)
    x = rng.standard_normal((1, 5, 5, 4)).astype("float32")
    layer.build(x.shape)
    for weight in (layer.fc1.kernel, layer.fc2.kernel, layer.dwconv.kernel):
        weight.assign(rng.standard_normal(weight.shape).astype("float32"))
    hidden = layer.dwconv(layer.fc1(x))
    exact = keras.ops.gelu(hidden, approximate=False)
    approx = keras.ops.gelu(hidden, approximate=True)
    want = layer.fc2(exact)
    np.testing.assert_allclose(layer(x), want, rtol=1e-5, atol=1e-5)
    assert not np.allclose(layer.fc2(approx), want, rtol=0, atol=1e-4)


LAYERS = [
    lambda: AdaptiveAveragePooling2D((7, 5)),
    lambda: DropPath(0.2, seed=3),
    lambda: OverlapPatchEmbed(8, patch_size=3, stride=2),
    lambda: SpatialReductionAttention(8, 2, sr_ratio=2, qkv_bias=False, qk_scale=0.5),
    lambda: SpatialReductionAttention(8, 2, linear=True, attn_drop=0.1),
    lambda: ConvMlp(16, 8, linear=True, drop=0.1),
    lambda: PVTBlock(8, 2, mlp_ratio=2, sr_ratio=2, drop_path=0.1),
    lambda: PVTStage(8, 2, 2, sr_ratio=2, linear=True, drop_path=[0.0, 0.1]),
]


@pytest.mark.parametrize("make", LAYERS)
def test_layer_config_round_trip_keeps_outputs(make, rng):
    layer = make()
    x = rng.standard_normal((2, 14, 10, 8)).astype("float32")
    out = layer(x)
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(x), out, rtol=1e-6, atol=1e-6)
    # Registered under the package name, so `keras.saving` can find it.
    assert keras.saving.get_registered_name(layer.__class__).startswith("keras_pvt>")


def test_block_and_stage_norms_use_eps_1e6():
    stage = PVTStage(8, 1, 2)
    stage.build((None, 16, 16, 3))
    assert stage.norm.epsilon == 1e-6
    assert stage.blocks[0].norm1.epsilon == 1e-6 and stage.blocks[0].norm2.epsilon == 1e-6
    assert stage.patch_embed.norm.epsilon == 1e-5


def test_layer_norm_equals_keras_layer_normalization(rng):
    x = (rng.standard_normal((2, 5, 7, 16)) * 4 + 2).astype("float32")
    gamma, beta = rng.standard_normal(16).astype("float32"), rng.standard_normal(16).astype("float32")
    ours, theirs = LayerNorm(epsilon=1e-6), keras.layers.LayerNormalization(epsilon=1e-6)
    for layer in (ours, theirs):
        layer.build(x.shape)
        layer.set_weights([gamma, beta])
    np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-5, atol=1e-6)
    half = LayerNorm(epsilon=1e-5, dtype="mixed_bfloat16")
    half.build(x.shape)
    assert half(x).dtype == "bfloat16"
    with pytest.raises(ValueError, match="last axis"):
        LayerNorm(axis=1)
