"""`SemanticFPN`: parity with mmsegmentation's own outputs, sizes, serialization, options.

The reference (tests/fixtures/seg_reference.npz, seg_tiny_mmseg.pth) is made by mmseg's FPN neck +
FPNHead on timm's PVT-v2 in mmseg's EncoderDecoder (make_segmentation_reference.py). Bar: max
|ours - mmseg| <= 1e-4 x max |mmseg| on the logits.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from _pvt_reference import FIXTURES, TOLERANCE, relative_error

from keras_pvt import PVT_V2, PVTV2Config
from keras_pvt.layers import ResizeNearestLike, SyncBatchNormalization
from keras_pvt.segmentation import SemanticFPN, is_segmenter, segmenter_backbone

from helpers import tiny_config

SEG_CHECKPOINT = FIXTURES / "seg_tiny_mmseg.pth"
SEG_REFERENCE = FIXTURES / "seg_reference.npz"
SIZES = ("64x64", "97x131")
# mmseg's trainable parameters of FPN(in_channels=[32, 64, 160, 256], out_channels=256, num_outs=4)
# and FPNHead(channels=128, num_classes=150) for PVT-v2-b0 (counted by mmseg itself).
MMSEG_B0_NECK, MMSEG_B0_HEAD = 2_492_416, 1_643_158


def fixture_backbone() -> PVTV2Config:
    meta = json.loads((FIXTURES / "reference.json").read_text())["tiny_sr"]
    return PVTV2Config(**{**meta, "num_classes": 0})


def fixture_segmenter(**options) -> keras.Model:
    """The fixture's tiny segmenter (neck 16, head 8 channels, 3 classes) with mmseg's weights."""
    return SemanticFPN(
        fixture_backbone(), 3, weights=SEG_CHECKPOINT, fpn_channels=16, head_channels=8, **options
    )


def reference_case(case: str) -> dict[str, np.ndarray]:
    with np.load(SEG_REFERENCE) as archive:
        out = {key.split("/", 1)[1]: archive[key] for key in archive.files if key.startswith(case + "/")}
    out["images"] = (out["pixels"].astype(np.float32) - 127.5) / 64.0
    return out


def small_segmenter(**options) -> keras.Model:
    return SemanticFPN(tiny_config(), 4, **{"fpn_channels": 8, "head_channels": 8, **options})


@pytest.fixture(scope="module")
def mmseg_model() -> keras.Model:
    return fixture_segmenter()


@pytest.mark.all_backends
def test_logits_match_mmseg_at_square_and_odd_sizes(mmseg_model: keras.Model) -> None:
    # The stride-4 logits (the decode head's output before mmseg's final resize) as a second output.
    both = keras.Model(mmseg_model.input, [mmseg_model.output, mmseg_model.get_layer("conv_seg").output])
    for case in SIZES:
        ref = reference_case(case)
        logits, stride4 = (keras.ops.convert_to_numpy(x) for x in both(ref["images"], training=False))
        assert logits.dtype == np.float32
        assert relative_error(logits, ref["logits"]) <= TOLERANCE, case
        assert relative_error(stride4, ref["logits_stride4"]) <= TOLERANCE, case


@pytest.mark.all_backends
def test_logits_stride_4_returns_the_heads_logits() -> None:
    model = fixture_segmenter(logits_stride=4)
    ref = reference_case("97x131")
    ours = keras.ops.convert_to_numpy(model(ref["images"], training=False))
    assert relative_error(ours, ref["logits_stride4"]) <= TOLERANCE


@pytest.mark.all_backends
def test_head_parameter_count_equals_mmseg_for_b0() -> None:
    model = SemanticFPN("b0", 150)
    backbone = {id(v) for v in segmenter_backbone(model).weights}
    head = [w for w in model.trainable_weights if id(w) not in backbone]
    neck = sum(int(np.prod(w.shape)) for w in head if w.path.startswith("neck_"))
    assert (neck, sum(int(np.prod(w.shape)) for w in head) - neck) == (MMSEG_B0_NECK, MMSEG_B0_HEAD)
    assert model.name == "semantic_fpn_b0" and model.output.shape == (None, None, None, 150)


@pytest.mark.all_backends
def test_any_size_one_model_odd_and_non_square() -> None:
    model = small_segmenter()
    for height, width in ((45, 61), (33, 97)):
        x = np.random.default_rng(0).standard_normal((1, height, width, 3)).astype(np.float32)
        assert tuple(model(x).shape) == (1, height, width, 4)
        quarter = (-(-height // 4), -(-width // 4))  # stage 1's map: ceil(size / 4)
        assert tuple(model.get_layer("conv_seg").output.shape) == (None, None, None, 4)
        assert tuple(keras.Model(model.input, model.get_layer("conv_seg").output)(x).shape) == (
            1,
            *quarter,
            4,
        )


@pytest.mark.all_backends
def test_fixed_input_shape_builds_static_shapes() -> None:
    model = small_segmenter(input_shape=(45, 61, 3))
    assert model.output.shape == (None, 45, 61, 4)
    assert small_segmenter(input_shape=(45, 61, 3), logits_stride=4).output.shape == (None, 12, 16, 4)


@pytest.mark.all_backends
def test_keras_file_round_trip_in_safe_mode(tmp_path: Path, mmseg_model: keras.Model) -> None:
    model = mmseg_model
    path = tmp_path / "segmenter.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    ref = reference_case("97x131")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(ref["images"])),
        keras.ops.convert_to_numpy(model(ref["images"])),
        rtol=0,
        atol=1e-6,
    )
    assert is_segmenter(loaded) and loaded.name == model.name


@pytest.mark.all_backends
def test_batch_norms_are_mmsegs_and_synchronised_on_tensorflow() -> None:
    model = small_segmenter()
    norms = [layer for layer in model.layers if isinstance(layer, SyncBatchNormalization)]
    assert len(norms) == 7  # one per conv block of the four scale heads: 1 + 1 + 2 + 3
    for norm in norms:
        assert (norm.epsilon, norm.momentum) == (1e-5, 0.9)
        assert norm.synchronized == (keras.backend.backend() == "tensorflow")
        assert "synchronized" not in norm.get_config()  # the file loads on every backend


@pytest.mark.all_backends
def test_nearest_resize_takes_pytorch_source_indices() -> None:
    layer = ResizeNearestLike()
    for size_in, size_out in ((7, 13), (4, 7), (13, 25), (5, 10), (3, 3)):
        x = np.arange(size_in, dtype=np.float32).reshape(1, size_in, 1, 1) * np.ones((1, 1, size_in, 1))
        out = keras.ops.convert_to_numpy(layer([x, np.zeros((1, size_out, size_out, 1), np.float32)]))
        torch_rule = np.minimum(np.floor(np.arange(size_out) * np.float32(size_in / size_out)), size_in - 1)
        np.testing.assert_array_equal(out[0, :, 0, 0], torch_rule)
    # TensorFlow's half-pixel rule picks other rows at the sizes of a PVT-v2 pyramid (7 -> 13).
    torch_rule, half_pixel = np.floor(np.arange(13) * 7 / 13), np.floor((np.arange(13) + 0.5) * 7 / 13)
    assert not np.array_equal(torch_rule, half_pixel)


@pytest.mark.all_backends
def test_output_is_float32_logits_named_logits_under_mixed_precision() -> None:
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = small_segmenter()
    finally:
        keras.config.set_dtype_policy("float32")
    assert model.output.dtype == "float32" and model.layers[-1].name == "logits"
    assert model.get_layer("conv_seg").compute_dtype == "float16"


@pytest.mark.all_backends
def test_features_model_backbone_is_used_as_it_is() -> None:
    features = PVT_V2(tiny_config(), features_only=True)
    model = SemanticFPN(features, 4, fpn_channels=8, head_channels=8)
    assert segmenter_backbone(model) is features and is_segmenter(model)
    with pytest.raises(ValueError, match="cannot change a features model"):
        SemanticFPN(features, 4, drop_path_rate=0.2)
    with pytest.raises(TypeError, match="not a keras-pvt features model"):
        SemanticFPN(PVT_V2(tiny_config()), 4)


@pytest.mark.all_backends
def test_backbone_weights_load_like_the_classifier_builders() -> None:
    path = FIXTURES / "tiny_sr_timm.safetensors"
    model = SemanticFPN(fixture_backbone(), 3, backbone_weights=path, fpn_channels=8, head_channels=8)
    classifier = PVT_V2(fixture_backbone(), features_only=True, weights=str(path))
    for ours, theirs in zip(segmenter_backbone(model).weights, classifier.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs))


@pytest.mark.all_backends
def test_drop_path_defaults_to_pvtv2_segs_rate() -> None:
    stage = segmenter_backbone(small_segmenter()).get_layer("stage4")
    assert max(stage.drop_path_rates) > 0 and segmenter_backbone(
        small_segmenter(drop_path_rate=0.0)
    ).get_layer("stage4").drop_path_rates == [0.0]


@pytest.mark.all_backends
def test_bad_options_are_named() -> None:
    for options, message in (
        ({"head": "mlp"}, "`head` must be one of"),
        ({"logits_stride": 2}, "`logits_stride` must be 1"),
        ({"fpn_channels": 0}, "`fpn_channels` must be a positive integer"),
        ({"dropout": 1.0}, "`dropout` must be in"),
    ):
        with pytest.raises(ValueError, match=message):
            small_segmenter(**options)
    with pytest.raises(ValueError, match="`num_classes` must be a positive integer"):
        SemanticFPN(tiny_config(), 0)
    with pytest.raises(TypeError, match="`backbone` must be a preset name"):
        SemanticFPN(42)
    with pytest.raises(ValueError, match=r"`num_classes` must be a positive integer, got 2.0 \(float\)"):
        SemanticFPN(tiny_config(), 2.0)


@pytest.mark.all_backends
def test_numpy_integers_are_taken_as_the_integers_they_are() -> None:
    model = SemanticFPN(
        tiny_config(),
        np.int64(3),
        fpn_channels=np.int32(8),
        head_channels=np.uint8(8),
        logits_stride=np.int64(4),
        dropout=np.float32(0.25),
    )
    assert model.output.shape == (None, None, None, 3)
    assert model.get_layer("conv_seg").filters == 3 and type(model.get_layer("conv_seg").filters) is int
    json.dumps(model.get_config())  # NumPy scalars would not serialise
    with pytest.raises(ValueError, match=r"expected ndim=4, found ndim=3") as info:
        model(np.full((32, 32, 3), 0.777, "float32"))
    assert "0.777" not in str(info.value)


@pytest.mark.all_backends
def test_is_segmenter_only_for_segmenters() -> None:
    assert not is_segmenter(PVT_V2(tiny_config()))
    assert not is_segmenter(PVT_V2(tiny_config(), features_only=True))
    assert not is_segmenter("model")
