"""Bad-input matrix, inputs: configs, tampered `.keras` files, image sizes and dtypes.

Every case asserts that the error names the problem (field, value, limit or minimum) and the fix.
"""

from __future__ import annotations

import json
import random
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_pvt import PRESETS, PVT_V2, PVTV2Config, compile_inference, limits
from keras_pvt.cli import main
from keras_pvt.layers import (
    AdaptiveAveragePooling2D,
    ConvMlp,
    ImageSizeCheck,
    OverlapPatchEmbed,
    PVTBlock,
    PVTStage,
    SpatialReductionAttention,
)
from keras_pvt.limits import MAX_DEPTH, MAX_PARAMETERS, MAX_WIDTH

from helpers import tiny_config

B0 = PRESETS["b0"]
TOO_SMALL = r"too small: this PVT-v2 needs images of at least {0}x{0} pixels.*Resize or pad"


# --------------------------------------------------------------------------- item 7: config types
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"linear": "False"}, r"`linear` must be True or False, got 'False' \(str\)"),
        ({"linear": 0}, r"`linear` must be True or False, got 0 \(int\)"),
        ({"qkv_bias": "no"}, r"`qkv_bias` must be True or False, got 'no' \(str\)"),
        ({"qk_scale": True}, r"`qk_scale` must be None or a positive number.*got True \(bool\)"),
        ({"qk_scale": float("inf")}, r"`qk_scale` must be None or a positive number \(finite\)"),
        ({"mlp_ratios": (8, 8, 4, float("nan"))}, r"`mlp_ratios\[3\]` must be a positive number.*nan"),
        ({"mlp_ratios": (8, 8, float("inf"), 4)}, r"`mlp_ratios\[2\]` must be a positive number \(finite\)"),
        ({"mlp_ratios": (8, "8", 4, 4)}, r"`mlp_ratios\[1\]` must be a positive number.*'8' \(str\)"),
        ({"depths": (2, 2.0, 2, 2)}, r"`depths\[1\]` must be a positive integer, got 2.0 \(float\)"),
        ({"depths": (2, 2, True, 2)}, r"`depths\[2\]` must be a positive integer, got True \(bool\)"),
        ({"embed_dims": (32, 64, "160", 256)}, r"`embed_dims\[2\]` must be a positive integer.*\(str\)"),
        ({"num_classes": True}, r"`num_classes` must be an integer >= 0, got True \(bool\)"),
        ({"patch_size": 7.0}, r"`patch_size` must be a positive integer, got 7.0 \(float\)"),
        ({"img_size": 224.0}, r"`img_size` must be a positive int or \(height, width\).*224.0 \(float\)"),
        ({"drop_rate": float("nan")}, r"`drop_rate` must be in \[0, 1\), got nan \(float\)"),
        ({"drop_path_rate": "0.1"}, r"`drop_path_rate` must be in \[0, 1\), got '0.1' \(str\)"),
    ],
)
def test_config_types_are_enforced_and_named(changes, message):
    with pytest.raises(ValueError, match=message):
        B0.replace(**changes)


def test_numpy_values_are_accepted_and_stored_as_plain_python():
    config = B0.replace(
        depths=tuple(np.int64(d) for d in (2, 2, 2, 2)),
        embed_dims=(np.int64(32), 64, np.uint16(160), np.int32(256)),
        mlp_ratios=(np.float32(8.0), np.int16(8), 4, np.float64(4.5)),
        qkv_bias=np.bool_(False),
        img_size=(np.int64(224), np.uint16(192)),
        drop_rate=np.float32(0.25),
        num_classes=np.int64(7),
    )
    assert config.depths == (2, 2, 2, 2) and config.num_classes == 7 and config.qkv_bias is False
    data = config.to_dict()
    values = [v for value in data.values() for v in (value if isinstance(value, list) else [value])]
    assert all(type(v) in (int, float, bool, type(None)) for v in values), data
    assert PVTV2Config.from_dict(json.loads(json.dumps(data))) == config


# --------------------------------------------------------------------------- item 5: sanity limits
@pytest.mark.parametrize(
    ("changes", "limit"),
    [
        ({"depths": (2, 2, 2, 10**6)}, r"`depths\[3\]` = 1000000 is above the sanity limit of 1000"),
        (
            {"embed_dims": (32, 64, 160, 2**18)},
            r"`embed_dims\[3\]` = 262144 is above the sanity limit of 65536",
        ),
        ({"num_heads": (1, 2, 5, 4096)}, r"`num_heads\[3\]` = 4096 is above the sanity limit of 1024"),
        ({"mlp_ratios": (8, 8, 4, 1000)}, r"`mlp_ratios\[3\]` = 1000 is above the sanity limit of 64"),
        ({"sr_ratios": (1000, 4, 2, 1)}, r"`sr_ratios\[0\]` = 1000 is above the sanity limit of 64"),
        ({"patch_size": 999}, r"`patch_size` = 999 is above the sanity limit of 64"),
        ({"num_classes": 10**9}, r"`num_classes` = 1000000000 is above the sanity limit of 1000000"),
        ({"in_channels": 2**20}, r"`in_channels` = 1048576 is above the sanity limit of 65536"),
        ({"img_size": 10**6}, r"`img_size`.*= 1000000 is above the sanity limit of 16384"),
        ({"num_stages": 100}, r"`num_stages` = 100 is above the sanity limit of 8"),
        ({"depths": [1] * 10**6}, r"`depths` has 1000000 values, above the sanity limit of 8"),
        # Every field within its limit, but together ~17 billion weights: the parameter budget refuses.
        (
            {"embed_dims": (32, 64, 160, 16384), "depths": (2, 2, 2, 8)},
            r"about [\d,]+ parameters, above the sanity limit of 2,000,000,000",
        ),
    ],
)
def test_config_sanity_limits_name_the_limit(changes, limit):
    with pytest.raises(ValueError, match=limit):
        B0.replace(**changes)


def test_the_largest_preset_is_far_inside_the_limits():
    assert max(config.num_parameters() for config in PRESETS.values()) * 20 < MAX_PARAMETERS
    assert max(max(config.depths) for config in PRESETS.values()) * 20 < MAX_DEPTH


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: PVTStage(16, 10**6, 1), r"PVTStage: `depth` = 1000000 is above the sanity limit of 1000"),
        (lambda: PVTStage(2**18, 1, 1), r"PVTStage: `dim` = 262144 is above the sanity limit of 65536"),
        (lambda: PVTStage(16, 1, 1, linear="False"), r"PVTStage: `linear` must be True or False"),
        (lambda: PVTStage(16, 2, 1, drop_path=[0.0, 2.0]), r"PVTStage: `drop_path\[1\]` must be in \[0, 1\)"),
        (lambda: PVTStage(16384, 100, 1), r"PVTStage 'pvt_stage.*' would have about [\d,]+ parameters"),
        (
            lambda: PVTBlock(16, 1, mlp_ratio=1e6),
            r"PVTBlock: `mlp_ratio` = 1000000.0 is above the sanity limit",
        ),
        (lambda: PVTBlock(16, 1, qk_scale=True), r"PVTBlock: `qk_scale` must be None or a positive number"),
        (lambda: ConvMlp(2**30, 16), r"ConvMlp: `hidden_dim` = 1073741824 is above the sanity limit"),
        (lambda: ConvMlp(2**19, 8192), r"ConvMlp 'conv_mlp.*' would have about [\d,]+ parameters"),
        (
            lambda: SpatialReductionAttention(16, num_heads=2**20),
            r"`num_heads` = 1048576 is above the sanity",
        ),
        (
            lambda: SpatialReductionAttention(16, sr_ratio=8.5),
            r"`sr_ratio` must be a positive integer, got 8.5",
        ),
        (lambda: OverlapPatchEmbed(16, patch_size=10**4), r"`patch_size` = 10000 is above the sanity limit"),
        (lambda: AdaptiveAveragePooling2D(10**6), r"`output_size` = 1000000 is above the sanity limit"),
        (lambda: ImageSizeCheck("29"), r"ImageSizeCheck: `min_size` must be a positive integer, got '29'"),
    ],
)
def test_layer_constructors_refuse_absurd_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_layer_configs_hold_plain_python_values():
    stage = PVTStage(np.int64(16), np.int64(2), np.int32(2), mlp_ratio=np.float32(4), qkv_bias=np.bool_(True))
    json.dumps(stage.get_config())  # NumPy scalars would not serialise
    assert type(stage.depth) is int and type(stage.mlp_ratio) is float and stage.qkv_bias is True
    assert len(stage.blocks) == 2


def test_patch_embed_refuses_an_absurd_input_channel_count_before_allocating():
    layer = OverlapPatchEmbed(MAX_WIDTH, patch_size=64, stride=4)
    with pytest.raises(ValueError, match=r"OverlapPatchEmbed.*parameters, above the sanity limit"):
        layer.build((None, None, None, MAX_WIDTH))


def _tampered_copy(source, target, edit) -> None:
    """`source` .keras with its config.json changed by `edit(config)`, written to `target`."""
    with zipfile.ZipFile(source) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    edit({layer["config"]["name"]: layer["config"] for layer in config["config"]["layers"]})
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda layers: layers["stage1"].update(depth=10**6), r"PVTStage: `depth` = 1000000 is above"),
        (lambda layers: layers["stage2"].update(dim=2**18), r"PVTStage: `dim` = 262144 is above"),
        (lambda layers: layers["stage3"].update(mlp_ratio=float("nan")), r"`mlp_ratio` must be a positive"),
        (lambda layers: layers["stage1"].update(linear="False"), r"PVTStage: `linear` must be True or False"),
        (lambda layers: layers["stage4"].update(sr_ratio=2**20), r"`sr_ratio` = 1048576 is above"),
        (lambda layers: layers["image_size_check"].update(min_size=2**40), r"`min_size` = 1099511627776"),
    ],
)
def test_tampered_keras_file_is_refused_under_safe_mode(edit, message, tmp_path):
    source = tmp_path / "tiny.keras"
    PVT_V2(tiny_config()).save(source)
    _tampered_copy(source, tmp_path / "tampered.keras", edit)
    # Keras wraps our ValueError in its own TypeError; the message still ends with ours.
    with pytest.raises((TypeError, ValueError), match=message):
        keras.saving.load_model(tmp_path / "tampered.keras", safe_mode=True)


# --------------------------------------------------------------------------- item 6: minimum size
def _brute_force_minimum(config: PVTV2Config) -> int:
    for size in range(1, 20000):
        maps = config.stage_sizes(size)
        if min(maps) >= 1 and (config.linear or all(m >= r for m, r in zip(maps, config.sr_ratios))):
            return size
    raise AssertionError("no size fits")


def test_min_input_size_equals_a_brute_force_search_over_random_configs():
    rng = random.Random(0)
    for _ in range(300):
        n = rng.randint(1, 5)
        config = PVTV2Config(
            num_stages=n,
            embed_dims=(8,) * n,
            num_heads=(1,) * n,
            mlp_ratios=(1,) * n,
            depths=(1,) * n,
            sr_ratios=tuple(rng.randint(1, 12) for _ in range(n)),
            patch_size=rng.randint(1, 12),
            linear=rng.random() < 0.2,
            img_size=4096,
        )
        assert config.min_input_size() == _brute_force_minimum(config), config
    assert {name: config.min_input_size() for name, config in PRESETS.items()} == {
        "b0": 29, "b1": 29, "b2": 29, "b2_li": 1, "b3": 29, "b4": 29, "b5": 29
    }  # fmt: skip


CUSTOM = {"patch_size": 3, "sr_ratios": (4, 4, 2, 2)}  # minimum 33 (see the brute force above)


@pytest.mark.parametrize(("changes", "minimum"), [({}, 29), (CUSTOM, 33)])
def test_exact_minimum_boundary(changes, minimum, rng):
    config = tiny_config(**changes)
    assert config.min_input_size() == minimum
    model = PVT_V2(config, classifier_activation=None)
    for height, width in [(minimum - 1, minimum - 1), (minimum - 1, 64), (64, minimum - 1)]:
        with pytest.raises(ValueError, match=f"{height}x{width} pixels are " + TOO_SMALL.format(minimum)):
            model(rng.standard_normal((1, height, width, 3)).astype("float32"))
    logits = keras.ops.convert_to_numpy(
        model(rng.standard_normal((2, minimum, minimum, 3)).astype("float32"))
    )
    assert logits.shape == (2, 10) and np.isfinite(logits).all()


@pytest.mark.parametrize(("changes", "minimum"), [({}, 29), (CUSTOM, 33)])
def test_below_the_minimum_a_reduction_conv_is_wider_than_its_map(changes, minimum):
    """The refused sizes are the ones that break: one pixel less and some stage's map is narrower than
    its spatial-reduction kernel. The margins come from the layers' own shape arithmetic, not from
    running a conv on a too-small map (what a CPU conv does then differs between CPU classes)."""
    model = PVT_V2(tiny_config(**changes))

    def narrowest_margin(height: int, width: int) -> int:
        """min over stages of (stage map side - reduction kernel), from the patch embeddings' shapes."""
        shape, margins = (1, height, width, 3), []
        for i in range(1, 5):
            stage = model.get_layer(f"stage{i}")
            shape = stage.patch_embed.compute_output_shape(shape)
            margins.append(min(shape[1:3]) - stage.sr_ratio)
        return min(margins)

    assert narrowest_margin(minimum - 1, 64) < 0 and narrowest_margin(64, minimum - 1) < 0
    assert narrowest_margin(minimum, minimum) >= 0


def test_li_variant_takes_any_size(rng):
    model = PVT_V2(tiny_config(linear=True), classifier_activation=None)
    assert model.get_layer("image_size_check").min_size == 1
    for size in (1, 5, 13):
        assert np.isfinite(keras.ops.convert_to_numpy(model(rng.random((1, size, size, 3), "float32")))).all()


@pytest.fixture(scope="module")
def tiny_model() -> keras.Model:
    return PVT_V2(tiny_config(), classifier_activation=None)


SMALL = np.zeros((1, 8, 8, 3), "float32")


def test_too_small_eager_and_predict(tiny_model):
    with pytest.raises(ValueError, match="8x8 pixels are " + TOO_SMALL.format(29)):
        tiny_model(SMALL)
    with pytest.raises(ValueError, match="8x8 pixels are " + TOO_SMALL.format(29)):
        tiny_model.predict(SMALL, verbose=0)


@pytest.mark.slow
def test_too_small_in_graphs_with_sizes_known_only_at_run_time(tiny_model):
    signature = [tf.TensorSpec((None, None, None, 3), tf.float32)]
    graph = tf.function(lambda images: tiny_model(images, training=False), input_signature=signature)
    assert graph(np.zeros((2, 29, 40, 3), "float32")).shape == (2, 10)
    with pytest.raises(tf.errors.InvalidArgumentError, match=TOO_SMALL.format(29) + r".*\[1 8 8 3\]"):
        graph(SMALL)
    # predict relaxes its trace to None dims after a few sizes: the run-time check then answers.
    for size in (64, 48, 40):
        tiny_model.predict(np.zeros((1, size, size, 3), "float32"), verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=TOO_SMALL.format(29)):
        tiny_model.predict(SMALL, verbose=0)


def test_too_small_static_input_shape_is_refused_at_build():
    with pytest.raises(ValueError, match="16x\\? pixels are " + TOO_SMALL.format(29)):
        PVT_V2(tiny_config(), input_shape=(16, None, 3))


@pytest.mark.parametrize("strategy", ["xla", "segments", "plain"])
@pytest.mark.slow
def test_compile_inference_checks_the_size_before_running(tiny_model, strategy):
    # XLA drops graph assertions, so without this check the "xla" path returned finite garbage.
    predict = compile_inference(tiny_model, strategy=strategy)
    with pytest.raises(ValueError, match="28x64 pixels are " + TOO_SMALL.format(29)):
        predict(np.zeros((1, 28, 64, 3), "float32"))
    assert np.isfinite(predict(np.zeros((1, 29, 29, 3), "float32")).numpy()).all()


# --------------------------------------------------------------------------- item 11: dtypes and shapes
@pytest.mark.parametrize("dtype", ["uint8", "int32", "bool"])
def test_compile_inference_refuses_integer_images(tiny_model, dtype):
    predict = compile_inference(tiny_model, strategy="plain")
    images = np.full((1, 32, 32, 3), 77, dtype)
    with pytest.raises(ValueError) as info:
        predict(images)
    message = str(info.value)
    assert f"Got {dtype} images of shape (1, 32, 32, 3)" in message
    assert "no preprocessing inside" in message and "keras_pvt.preprocess_input" in message
    assert "77" not in message  # the shape and dtype, never the values
    with pytest.raises(ValueError, match="Got uint8 images"):
        predict(tf.constant(np.zeros((1, 32, 32, 3), "uint8")))


def test_compile_inference_takes_integer_images_when_the_model_normalises_inside(tiny_model):
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, tiny_model(keras.layers.Rescaling(1 / 255)(inputs)))
    pixels = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype="uint8")
    got = compile_inference(model, strategy="plain")(pixels).numpy()
    np.testing.assert_allclose(got, model(pixels.astype("float32")).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((32, 32, 3), r"shape \(batch, height, width, 3\), got shape \(32, 32, 3\) \(float32\).*batch axis"),
        ((1, 32, 32, 1), r"shape \(batch, height, width, 3\), got shape \(1, 32, 32, 1\) \(float32\)"),
        ((1, 3, 32, 32), r"got shape \(1, 3, 32, 32\) \(float32\).*channels-last"),
        ((1, 1, 32, 32, 3), r"got shape \(1, 1, 32, 32, 3\)"),
    ],
)
def test_compile_inference_wrong_rank_or_channels_is_one_clear_error(tiny_model, shape, message):
    with pytest.raises(ValueError, match=message) as info:
        compile_inference(tiny_model, strategy="plain")(np.full(shape, 0.777, "float32"))
    assert "0.777" not in str(info.value)


# --------------------------------------------------------------------------- deployment exports
@pytest.mark.slow
def test_saved_model_with_dynamic_size_refuses_small_images_at_run_time(tiny_model, tmp_path):
    from keras_pvt.export import export_saved_model

    export_saved_model(tiny_model, tmp_path / "served")
    serve = tf.saved_model.load(str(tmp_path / "served")).signatures["serving_default"]
    assert serve(tf.zeros((1, 29, 33, 3)))["predictions"].shape == (1, 10)
    with pytest.raises(tf.errors.InvalidArgumentError, match=TOO_SMALL.format(29)):
        serve(tf.zeros((1, 16, 64, 3)))


@pytest.mark.slow
def test_tflite_builtin_conversion_is_unchanged_by_the_check(tiny_model, tmp_path, monkeypatch):
    """TFLite has no builtin assertion: the converter drops it, adding no op (and no Flex op). So a
    dynamic-size .tflite cannot check at run time; a fixed-size export is checked when it is made."""
    pytest.importorskip("ai_edge_litert")
    from keras_pvt.export import convert_to_tflite, op_histogram

    def convert(name: str, model: keras.Model, size: int | None) -> dict:
        path = tmp_path / name
        convert_to_tflite(
            model, path, image_size=size, runs=1, verify_images=np.zeros((1, 32, 32, 3), "float32")
        )
        return op_histogram(str(path))

    checked = convert("checked.tflite", tiny_model, None)
    monkeypatch.setattr(ImageSizeCheck, "call", lambda self, inputs: inputs)
    assert checked == convert("unchecked.tflite", PVT_V2(tiny_config(), classifier_activation=None), None)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="16x16 pixels are " + TOO_SMALL.format(29)):
        convert_to_tflite(tiny_model, tmp_path / "small.tflite", image_size=16, verify=False)
    assert not (tmp_path / "small.tflite").exists()


@pytest.mark.parametrize("fmt", ["tflite", "saved_model"])
def test_export_cli_refuses_an_image_size_below_the_minimum(fmt, tmp_path, capsys):
    model_file = tmp_path / "tiny.keras"
    PVT_V2(tiny_config()).save(model_file)
    output = tmp_path / ("m.tflite" if fmt == "tflite" else "served")
    argv = ["export", str(model_file), "--format", fmt, "--output", str(output), "--image-size", "28x40"]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "keras-pvt export: error:" in error and "28x40 pixels are too small" in error
    assert "at least 29x29" in error
    assert "Exception encountered" not in error  # refused before Keras traced anything
    assert not output.exists()


def test_export_cli_names_the_limit_a_tampered_keras_file_breaks(tmp_path, capsys):
    source = tmp_path / "tiny.keras"
    PVT_V2(tiny_config()).save(source)
    _tampered_copy(source, tmp_path / "tampered.keras", lambda layers: layers["stage1"].update(depth=10**6))
    code = main(["export", str(tmp_path / "tampered.keras"), "--output", str(tmp_path / "out.tflite")])
    assert code == 2
    assert "`depth` = 1000000 is above" in capsys.readouterr().err


# --------------------------------------------------------------------------- channels, rank, empty batch
@pytest.fixture(scope="module")
def grey_model() -> keras.Model:
    return PVT_V2(tiny_config(), input_shape=(None, None, 1), classifier_activation=None)


GREY_REFUSES_RGB = (
    r"got shape \(2, 32, 32, 3\) \(float32\): the model takes 1-channel images, these have 3 channels.*"
    r"RGB to grey.*input_shape=\(None, None, 3\)"
)


@pytest.mark.parametrize("call", ["model", "predict", "compile_inference"])
def test_rgb_images_into_a_grey_classifier_are_one_clear_error(grey_model, call):
    rgb = np.full((2, 32, 32, 3), 0.777, "float32")
    run = {
        "model": grey_model,
        "predict": lambda images: grey_model.predict(images, verbose=0),
        "compile_inference": compile_inference(grey_model, strategy="plain"),
    }[call]
    with pytest.raises(ValueError, match=GREY_REFUSES_RGB) as info:
        run(rgb)
    assert "0.777" not in str(info.value)


def test_grey_images_into_an_rgb_classifier_and_channels_first_say_how_to_fix(tiny_model):
    with pytest.raises(ValueError, match=r"takes 3-channel images, these have 1 channels.*np\.repeat"):
        tiny_model(np.zeros((1, 32, 32, 1), "float32"))
    with pytest.raises(ValueError, match=r"these have 32 channels.*channels-first \(N, C, H, W\): transpose"):
        tiny_model(np.zeros((1, 3, 32, 32), "float32"))


@pytest.mark.parametrize("shape", [(32, 32, 3), (32, 32), (1, 1, 32, 32, 3), (32, 32, 1)])
def test_another_rank_names_the_shape_never_the_values(grey_model, tiny_model, shape):
    model = grey_model if shape[-1] == 1 else tiny_model  # (32, 32, 1): Keras once read 32 images 32x1
    with pytest.raises(ValueError, match=rf"expected ndim=4, found ndim={len(shape)}") as info:
        model(np.full(shape, 0.777, "float32"))
    assert "0.777" not in str(info.value) and f"Full shape received: {shape}" in str(info.value)


def test_predict_on_one_image_without_a_batch_axis_names_the_shape():
    # A model of its own: predict's trace, relaxed after calls of several ranks, would lose the rank.
    model = PVT_V2(tiny_config())
    with pytest.raises(ValueError, match=r"expected ndim=4, found ndim=3") as info:
        model.predict(np.full((32, 32, 3), 0.777, "float32"), verbose=0)
    assert "0.777" not in str(info.value)


def test_a_fixed_input_size_is_still_required(tmp_path):
    model = PVT_V2(tiny_config(), input_shape=(64, 64, 3))
    with pytest.raises(
        ValueError, match=r"expected shape=\(None, 64, 64, None\), found shape=\(1, 32, 32, 3\)"
    ):
        model(np.zeros((1, 32, 32, 3), "float32"))


def test_an_empty_batch_is_named_on_every_path(tiny_model):
    empty = np.zeros((0, 32, 32, 3), "float32")
    for run in (tiny_model, compile_inference(tiny_model, strategy="plain")):
        with pytest.raises(ValueError, match=r"Got an empty batch \(shape \(0, 32, 32, 3\)\).*Skip the call"):
            run(empty)


# --------------------------------------------------------------------------- serialized model configs
def _serialized(model: keras.Model) -> dict:
    return json.loads(json.dumps(keras.saving.serialize_keras_object(model)))


@pytest.mark.parametrize("kind", ["classifier", "features", "segmenter"])
def test_the_weight_estimate_of_a_config_is_close_to_the_built_model(kind):
    from keras_pvt.segmentation import SemanticFPN

    model = {
        "classifier": lambda: PVT_V2(tiny_config()),
        "features": lambda: PVT_V2(tiny_config(linear=True), features_only=True),
        "segmenter": lambda: SemanticFPN(tiny_config(), num_classes=5, fpn_channels=16, head_channels=8),
    }[kind]()
    estimate, _ = limits._model_parameters(_serialized(model))
    assert abs(estimate - model.count_params()) <= 0.05 * model.count_params()  # norms, conv biases
    limits.check_model_config(_serialized(model))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda layer: layer.update(units=2 * 10**9),
            r"layer 'head' \(Dense\): `units` = 2000000000 is above",
        ),
        (
            lambda layer: layer.update(units="10"),
            r"layer 'head' \(Dense\): `units` must be a positive integer",
        ),
        (
            lambda layer: layer.update(kernel_size=[10**6]),
            r"`kernel_size` = 1000000 is above the sanity limit",
        ),
        (
            lambda layer: layer.update(units=10**6),
            r"would have about [\d,]+ parameters, above the sanity limit",
        ),
    ],
)
def test_a_config_beyond_the_limits_is_refused_unbuilt(edit, message):
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Dense(4096, name="wide")(x))
    config = _serialized(keras.Model(inputs, keras.layers.Dense(10, name="head")(x)))
    layers = {layer["name"]: layer["config"] for layer in config["config"]["layers"]}
    edit(layers["conv"] if "kernel_size" in message else layers["head"])
    with pytest.raises(ValueError, match=message):
        limits.check_model_config(config)


def test_keras_pvt_layers_in_a_config_are_checked_by_their_own_rules():
    config = _serialized(PVT_V2(tiny_config()))
    stage = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "PVTStage")
    stage["config"]["depth"] = 10**6
    with pytest.raises(ValueError, match=r"layer 'stage1' \(PVTStage\): `depth` = 1000000 is above"):
        limits.check_model_config(config)
    stage["config"].update(depth=900, dim=4096)  # each within its limit; together far above
    with pytest.raises(ValueError, match=r"about [\d,]+ parameters, above the sanity limit"):
        limits.check_model_config(config)
