"""The functional builder: parameter counts, shapes, keras.applications arguments, errors, init."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_pvt
from keras_pvt import PRESETS, PVT_V2

from helpers import tiny_config

REFERENCE_PARAMS = {
    "b0": 3_666_760,
    "b1": 14_009_000,
    "b2": 25_362_856,
    "b2_li": 22_553_512,
    "b3": 45_238_696,
    "b4": 62_556_072,
    "b5": 81_956_008,
}
BUILDERS = {
    "b0": keras_pvt.PVTV2B0,
    "b1": keras_pvt.PVTV2B1,
    "b2": keras_pvt.PVTV2B2,
    "b2_li": keras_pvt.PVTV2B2Li,
    "b3": keras_pvt.PVTV2B3,
    "b4": keras_pvt.PVTV2B4,
    "b5": keras_pvt.PVTV2B5,
}


@pytest.fixture(scope="module")
def built_variant():
    """`built_variant(name)`: that variant's builder with weights=None, built once for this module.

    Building b3-b5 takes seconds each; the models are freed when the module's tests are done.
    """
    cache: dict[str, keras.Model] = {}

    def build(variant: str) -> keras.Model:
        if variant not in cache:
            cache[variant] = BUILDERS[variant](weights=None)
        return cache[variant]

    return build


@pytest.mark.parametrize("variant", list(REFERENCE_PARAMS))
def test_parameter_counts_equal_the_reference(variant, built_variant):
    model = built_variant(variant)
    assert model.count_params() == REFERENCE_PARAMS[variant]
    assert PRESETS[variant].num_parameters() == REFERENCE_PARAMS[variant]  # counted without building
    assert f"{REFERENCE_PARAMS[variant]:,} parameters" in BUILDERS[variant].__doc__
    assert model.name == f"pvt_v2_{variant}"
    assert tuple(model.input_shape) == (None, None, None, 3)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"linear": True},
        {"qkv_bias": False, "num_classes": 0},
        {"sr_ratios": (1, 1, 1, 1), "mlp_ratios": (2.5, 3, 1, 8), "patch_size": 5, "in_channels": 1},
    ],
)
def test_the_parameter_count_of_a_config_equals_the_built_model(changes):
    config = tiny_config(**changes)
    assert config.num_parameters() == PVT_V2(config).count_params()


@pytest.mark.parametrize("variant", list(REFERENCE_PARAMS))
@pytest.mark.parametrize("size", [(224, 224), (193, 257), (64, 64)])
def test_stage_map_shapes_for_every_variant(variant, size, built_variant):
    """Symbolic shapes of the stage maps (no heavy forward pass for the big variants)."""
    model, names = built_variant(variant), ["stage1", "stage2", "stage3", "stage4"]
    stages = keras.Model(model.inputs, {name: model.get_layer(name).output for name in names})
    maps = stages.compute_output_spec(keras.KerasTensor((None, *size, 3)))
    config = PRESETS[variant]
    heights, widths = config.stage_sizes(size[0]), config.stage_sizes(size[1])
    for i, name in enumerate(names):
        assert tuple(maps[name].shape) == (None, heights[i], widths[i], config.embed_dims[i])


@pytest.mark.parametrize("variant", ["b0", "b2_li"])
@pytest.mark.parametrize("size", [(224, 224), (193, 257), (64, 64), (33, 47)])
def test_real_forward_pass_shapes(variant, size, rng):
    model = PVT_V2(variant, features_only=True)
    images = rng.standard_normal((1, *size, 3)).astype("float32")
    out = model(images)
    config = PRESETS[variant]
    for i, (h, w) in enumerate(zip(config.stage_sizes(size[0]), config.stage_sizes(size[1]))):
        assert out[f"stage{i + 1}"].shape == (1, h, w, config.embed_dims[i])
        assert np.isfinite(keras.ops.convert_to_numpy(out[f"stage{i + 1}"])).all()


@pytest.mark.all_backends
def test_li_model_runs_below_the_pooling_size(rng):
    # Stage-4 maps of 1x1 and 2x3: the 7x7 adaptive pool must upsample-average like PyTorch.
    model = PVT_V2(tiny_config(linear=True))
    for size in [(17, 17), (40, 70)]:
        assert model(rng.standard_normal((2, *size, 3)).astype("float32")).shape == (2, 10)


def test_one_model_serves_every_size(rng):
    model = PVT_V2(tiny_config())
    for size in [(64, 64), (96, 33), (31, 200)]:
        probs = keras.ops.convert_to_numpy(model(rng.random((2, *size, 3), dtype=np.float32)))
        assert probs.shape == (2, 10)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.all_backends
def test_head_and_pooling_options(rng):
    config = tiny_config()
    images = rng.random((2, 64, 64, 3), dtype=np.float32)
    logits = PVT_V2(config, classes=5, classifier_activation=None)
    assert logits(images).shape == (2, 5)
    assert logits.get_layer("head").units == 5
    assert PVT_V2(config, include_top=False)(images).shape == (2, 2, 2, 64)
    assert PVT_V2(config, include_top=False, pooling="avg")(images).shape == (2, 64)
    assert PVT_V2(config, include_top=False, pooling="max")(images).shape == (2, 64)
    assert PVT_V2(config, classes=0)(images).shape == (2, 2, 2, 64)
    with pytest.raises(ValueError, match="pooling"):
        PVT_V2(config, include_top=False, pooling="mean")


@pytest.mark.all_backends
def test_head_is_norm_mean_dense(rng):
    """Logits = Dense(mean over tokens of the stage-4 map after its LayerNorm)."""
    model = PVT_V2(tiny_config(), classifier_activation=None)
    features = keras.Model(model.input, model.get_layer("stage4").output)
    images = rng.random((2, 64, 64, 3), dtype=np.float32)
    pooled = keras.ops.convert_to_numpy(features(images)).mean(axis=(1, 2))
    head = model.get_layer("head")
    want = pooled @ head.kernel.numpy() + head.bias.numpy()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(images)), want, rtol=1e-5, atol=1e-5)


@pytest.mark.all_backends
def test_input_tensor_and_dict_config(rng):
    inputs = keras.Input((64, 64, 3))
    model = PVT_V2(tiny_config().to_dict(), input_tensor=inputs)
    assert model.inputs[0] is inputs
    assert model(rng.random((1, 64, 64, 3), dtype=np.float32)).shape == (1, 10)


@pytest.mark.all_backends
def test_the_input_decides_the_channel_count():
    """As in keras.applications (tests/test_channels.py covers weights and wrong-count calls)."""
    gray = PVT_V2(tiny_config(), input_shape=(64, 64, 1))
    assert gray.get_layer("stage1").patch_embed.proj.kernel.shape == (7, 7, 1, 16)
    rgbd = PVT_V2(tiny_config(in_channels=1), input_tensor=keras.Input((64, 64, 4)))
    assert rgbd.get_layer("stage1").patch_embed.proj.kernel.shape == (7, 7, 4, 16)


@pytest.mark.all_backends
def test_too_small_input_is_explained():
    with pytest.raises(ValueError, match=r"Images of 16x64 pixels are too small.*at least 29x29"):
        keras_pvt.PVTV2B0(weights=None, input_shape=(16, 64, 3))
    with pytest.raises(ValueError, match=r"Images of 64x20 pixels are too small"):
        keras_pvt.PVTV2B0(weights=None, input_shape=(64, 20, 3))
    with pytest.raises(ValueError, match="NHWC"):
        keras_pvt.PVTV2B0(weights=None, input_shape=(64, 64))


def test_drop_path_rates_are_linear_over_all_blocks():
    model = PVT_V2("b0", drop_path_rate=0.3)
    rates = [block.drop_path.rate for i in range(1, 5) for block in model.get_layer(f"stage{i}").blocks]
    np.testing.assert_allclose(rates, np.linspace(0, 0.3, 8), atol=1e-7)


def test_drop_path_only_in_training(rng):
    model = PVT_V2(tiny_config(depths=(2, 2, 2, 2)), drop_path_rate=0.5)
    images = rng.random((4, 64, 64, 3), dtype=np.float32)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model(images)), keras.ops.convert_to_numpy(model(images, training=False))
    )
    trained = [keras.ops.convert_to_numpy(model(images, training=True)) for _ in range(3)]
    assert not np.allclose(trained[0], trained[1]) or not np.allclose(trained[1], trained[2])


def test_reference_initialisation():
    model = PVT_V2("b1")
    stage = model.get_layer("stage1")
    conv = stage.patch_embed.proj.kernel.numpy()  # 7x7x3x64: fan_out = 49 * 64
    assert conv.std() == pytest.approx(np.sqrt(2 / (49 * 64)), rel=0.05)
    dw = stage.blocks[0].mlp.dwconv.kernel.numpy()  # depthwise: fan_out = 9
    assert dw.std() == pytest.approx(np.sqrt(2 / 9), rel=0.1)
    fc1 = stage.blocks[0].mlp.fc1.kernel.numpy()
    assert fc1.std() == pytest.approx(0.02 * 0.88, rel=0.05)  # truncated at 2 std
    assert np.abs(fc1).max() <= 0.04 + 1e-6
    assert not stage.blocks[0].mlp.fc1.bias.numpy().any()
    assert (stage.norm.gamma.numpy() == 1).all() and not stage.norm.beta.numpy().any()
