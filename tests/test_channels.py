"""Any input channel count: building, RGB checkpoints adapted by timm's rule, and preprocessing.

Parity bar as in test_fidelity.py: timm's own PyramidVisionTransformerV2(in_chans=C), loaded with the
3-channel tiny checkpoint through timm's `adapt_input_conv` (tests/fixtures/channels_reference.npz,
made by make_channels_reference.py), vs our model built with input_shape=(None, None, C).
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import keras
import numpy as np
import pytest
from _pvt_reference import FIXTURES, OUTPUTS, TOLERANCE, b0_state, fixture_config, relative_error

import keras_pvt
from keras_pvt import PVT_V2, preprocess_input, presets
from keras_pvt.checkpoints import CheckpointMismatchError, load_canonical, load_checkpoint, pretrained
from keras_pvt.checkpoints.assign import FIRST_KERNEL, adapt_input_conv
from keras_pvt.checkpoints.load import load_weights, preset_of
from keras_pvt.imagenet import IMAGENET_MEAN, IMAGENET_STD, normalization_stats

from helpers import tiny_config

RGB_CHECKPOINT = FIXTURES / "tiny_sr_timm.safetensors"
ADAPTED = r"adapted it from 3 to the model's {} input channels"


@lru_cache(maxsize=1)
def channels_reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "channels_reference.npz") as archive:
        return {key: archive[key] for key in archive.files}


def _tiny_sr(channels: int, weights) -> keras.Model:
    """The tiny_sr fixture model for `channels`, loaded from `weights`, giving logits and stage maps."""
    with pytest.warns(UserWarning, match=ADAPTED.format(channels)):
        model = PVT_V2(
            fixture_config("tiny_sr"),
            input_shape=(None, None, channels),
            weights=str(weights),
            classifier_activation=None,
        )
    stages = {f"stage{i}": model.get_layer(f"stage{i}").output for i in range(1, 5)}
    return keras.Model(model.input, {"logits": model.output, **stages})


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_weights()]


def _assert_same_weights(ours: keras.Model, theirs: keras.Model) -> None:
    for a, b in zip(_weights(ours), _weights(theirs), strict=True):
        np.testing.assert_array_equal(a, b)


def test_adapt_input_conv_is_timms_rule() -> None:
    kernel = np.random.default_rng(0).normal(size=(5, 3, 2, 2)).astype(np.float32)  # (O, I, kh, kw)
    r, g, b = kernel[:, 0:1], kernel[:, 1:2], kernel[:, 2:3]
    np.testing.assert_allclose(adapt_input_conv(kernel, 1), r + g + b, rtol=1e-6)
    np.testing.assert_allclose(adapt_input_conv(kernel, 2), np.concatenate([r, g], 1) * 1.5, rtol=1e-6)
    four = np.concatenate([r, g, b, r], 1) * 0.75
    np.testing.assert_allclose(adapt_input_conv(kernel, 4), four, rtol=1e-6)
    seven = np.concatenate([r, g, b, r, g, b, r], 1) * (3 / 7)
    np.testing.assert_allclose(adapt_input_conv(kernel, 7), seven, rtol=1e-6)
    np.testing.assert_array_equal(adapt_input_conv(kernel, 3), kernel)
    keras_layout = kernel.transpose(2, 3, 1, 0)  # (kh, kw, I, O)
    np.testing.assert_array_equal(
        adapt_input_conv(keras_layout, 4, axis=2), adapt_input_conv(kernel, 4).transpose(2, 3, 1, 0)
    )
    with pytest.raises(ValueError, match="3 input channels"):
        adapt_input_conv(kernel[:, :2], 4)


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_rgb_checkpoint_adapted_matches_timm(channels: int) -> None:
    model = _tiny_sr(channels, RGB_CHECKPOINT)
    pixels = channels_reference()[f"c{channels}/pixels"]
    assert pixels.shape == (1, 45, 61, channels)
    outputs = model((pixels.astype(np.float32) - 127.5) / 64.0)
    errors = {
        key: relative_error(np.asarray(outputs[key]), channels_reference()[f"c{channels}/{key}"])
        for key in OUTPUTS
    }
    assert max(errors.values()) <= TOLERANCE, errors


@pytest.mark.parametrize("filename", ["tiny_sr_official.npz", "tiny_sr_official.pth"])
def test_official_naming_adapts_the_same(filename: str) -> None:
    _assert_same_weights(_tiny_sr(4, FIXTURES / filename), _tiny_sr(4, RGB_CHECKPOINT))


@pytest.mark.parametrize(("channels", "suffix"), [(1, ".weights.h5"), (4, ".keras")])
def test_rgb_keras_file_adapts_the_same(tmp_path, channels: int, suffix: str) -> None:
    rgb = PVT_V2(fixture_config("tiny_sr"), weights=str(RGB_CHECKPOINT), classifier_activation=None)
    path = tmp_path / f"rgb{suffix}"
    if suffix == ".keras":
        rgb.save(path)
    else:
        rgb.save_weights(path)
    adapted = _tiny_sr(channels, path)
    reference = _tiny_sr(channels, RGB_CHECKPOINT)
    for ours, theirs in zip(_weights(adapted), _weights(reference), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    # A Keras file saved for that channel count loads as it is, without adapting.
    adapted.save_weights(tmp_path / "own.weights.h5")
    again = PVT_V2(fixture_config("tiny_sr"), input_shape=(None, None, channels), classifier_activation=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_weights(again, tmp_path / "own.weights.h5", config=fixture_config("tiny_sr"))
    _assert_same_weights(again, adapted)


def test_first_kernel_of_another_channel_count_is_a_clear_mismatch(tmp_path) -> None:
    state, _ = load_canonical(RGB_CHECKPOINT)
    state = {**state, FIRST_KERNEL: np.concatenate([state[FIRST_KERNEL]] * 2, axis=1)[:, :5]}
    model = PVT_V2(fixture_config("tiny_sr"), input_shape=(None, None, 1))
    before = _weights(model)
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(model, state, config=fixture_config("tiny_sr"))
    message = str(info.value)
    assert "stage1.patch_embed.proj.weight: (8, 5, 7, 7) vs (8, 1, 7, 7)" in message
    assert "only 3-channel (RGB) checkpoints are adapted" in message
    assert "input_shape=(None, None, 5)" in message
    for a, b in zip(before, _weights(model), strict=True):
        np.testing.assert_array_equal(a, b)  # nothing was written
    # A Keras file for 1 channel does not go into a 4-channel model either.
    model.save_weights(tmp_path / "gray.weights.h5")
    with pytest.raises(ValueError, match="do not fit model"):
        PVT_V2(
            fixture_config("tiny_sr"), input_shape=(None, None, 4), weights=str(tmp_path / "gray.weights.h5")
        )


def test_imagenet_weights_adapt_through_the_same_code(tmp_path, monkeypatch) -> None:
    path = tmp_path / "pvt_v2_b0.npz"
    np.savez(path, **b0_state())
    monkeypatch.setattr(pretrained, "fetch", lambda variant, **_: path)
    with pytest.warns(UserWarning, match=ADAPTED.format(1)):
        gray = keras_pvt.PVTV2B0(include_top=False, input_shape=(None, None, 1))
    kernel = gray.get_layer("stage1").patch_embed.proj.kernel.numpy()
    rgb = b0_state()["patch_embed.proj.weight"].transpose(2, 3, 1, 0)
    np.testing.assert_allclose(kernel, rgb.sum(axis=2, keepdims=True), rtol=1e-6, atol=1e-7)
    assert preset_of(presets.get_config("b0").replace(in_channels=1)) == "b0"


def test_any_channel_count_builds_and_refuses_other_counts() -> None:
    model = PVT_V2(tiny_config(), input_tensor=keras.Input((64, 64, 5)))
    assert model.get_layer("stage1").patch_embed.proj.kernel.shape == (7, 7, 5, 16)
    assert model(np.zeros((1, 64, 64, 5), np.float32)).shape == (1, 10)
    with pytest.raises(ValueError, match=r"got shape \(1, 64, 64, 3\).*takes 5-channel images, these have 3"):
        model(np.zeros((1, 64, 64, 3), np.float32))
    any_size = PVT_V2(tiny_config(), input_shape=(None, None, 2))
    refused = r"the model takes 2-channel images, these have 3 channels"
    with pytest.raises(ValueError, match=refused):
        any_size(np.zeros((1, 64, 64, 3), np.float32))
    with pytest.raises(ValueError, match=refused):
        PVT_V2(tiny_config(), input_shape=(None, None, 2), features_only=True)(np.zeros((1, 64, 64, 3)))
    with pytest.raises(ValueError, match="channel count is unknown"):
        PVT_V2(tiny_config(), input_shape=(None, None, None))
    with pytest.raises(ValueError, match="in_channels"):
        PVT_V2(tiny_config(), input_shape=(64, 64, 0))


def test_preprocess_rgb_is_imagenet_and_other_counts_use_the_rgb_mean() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (2, 4, 5, 4)).astype(np.float32)
    rgb = preprocess_input(pixels[..., :3])
    want_rgb = (pixels[..., :3] / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(rgb, want_rgb, atol=1e-5)
    for channels in (1, 2, 4):
        out = preprocess_input(pixels[..., :channels])
        want = (pixels[..., :channels] / 255 - np.mean(IMAGENET_MEAN)) / np.mean(IMAGENET_STD)
        np.testing.assert_allclose(out, want, atol=1e-5)
    mean, std = normalization_stats(1)
    np.testing.assert_allclose([mean[0], std[0]], [0.449, 0.226], atol=1e-6)
    tensor = preprocess_input(keras.ops.convert_to_tensor(pixels))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(tensor), preprocess_input(pixels), atol=1e-6)


def test_preprocess_takes_a_caller_mean_and_std() -> None:
    pixels = np.random.default_rng(2).integers(0, 256, (1, 3, 3, 2)).astype(np.float32)
    out = preprocess_input(pixels, mean=(0.1, 0.2), std=0.5)
    np.testing.assert_allclose(out, (pixels / 255 - np.array([0.1, 0.2])) / 0.5, atol=1e-5)
    rgb = np.random.default_rng(3).integers(0, 256, (1, 3, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(preprocess_input(rgb, mean=0.5, std=0.25), (rgb / 255 - 0.5) / 0.25, atol=1e-5)
    with pytest.raises(ValueError, match=r"`mean` must be a finite number or 2 finite values"):
        preprocess_input(pixels, mean=IMAGENET_MEAN)
    with pytest.raises(ValueError, match="`std` must be positive"):
        preprocess_input(pixels, std=(0.2, 0.0))
