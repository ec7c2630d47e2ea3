"""Checkpoint reading, naming schemes, architecture inference, mismatch reports and `weights=`."""

from __future__ import annotations

import functools
import http.server
import shutil
import sys
import threading
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from _pvt_reference import FIXTURES, b0_state, expected, fixture_config, images, relative_error
from safetensors.numpy import save_file

from keras_pvt import PVT_V2, PVTV2B0
from keras_pvt.checkpoints import (
    CheckpointMismatchError,
    CheckpointReadError,
    detect_scheme,
    from_checkpoint,
    infer_config,
    load_checkpoint,
    model_targets,
    pretrained,
    read_state_dict,
    to_canonical,
)
from keras_pvt.checkpoints.assign import add_layer, conv_kernel
from keras_pvt.checkpoints.heads import HeadCheckpoint, checkpoint_classes, load_head_checkpoint

TINY_SR = FIXTURES / "tiny_sr_timm.safetensors"
TINY_LI = FIXTURES / "tiny_li_timm.safetensors"


# ------------------------------------------------------------------ readers
@pytest.mark.all_backends
def test_read_each_format_gives_the_same_tensors() -> None:
    timm = read_state_dict(TINY_SR)
    official = read_state_dict(FIXTURES / "tiny_sr_official.npz")
    assert len(timm) == len(official)
    assert all(v.dtype == np.float32 for v in timm.values())
    canon_a, _ = to_canonical(timm)
    canon_b, _ = to_canonical(official)
    assert canon_a.keys() == canon_b.keys()
    for key in canon_a:
        np.testing.assert_array_equal(canon_a[key], canon_b[key])


def test_read_pth_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` would raise ImportError
    state = read_state_dict(FIXTURES / "tiny_sr_official.pth")
    npz = read_state_dict(FIXTURES / "tiny_sr_official.npz")
    assert state.keys() == npz.keys()
    for key, value in npz.items():
        assert state[key].dtype == np.float32
        np.testing.assert_array_equal(state[key], value)


def test_half_precision_safetensors_are_widened(tmp_path: Path) -> None:
    path = tmp_path / "half.safetensors"
    save_file({"a": np.ones((2, 3), np.float16)}, str(path))
    assert read_state_dict(path)["a"].dtype == np.float32


@pytest.mark.parametrize(
    "source", ["tiny_sr_timm.safetensors", "tiny_sr_official.npz", "tiny_sr_official.pth"]
)
def test_truncated_files_raise_a_clear_error(tmp_path: Path, source: str) -> None:
    data = (FIXTURES / source).read_bytes()
    path = tmp_path / source
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointReadError, match="truncated, corrupt"):
        read_state_dict(path)


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".pth"])
def test_garbage_files_raise_a_clear_error(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(CheckpointReadError, match=str(path.name)):
        read_state_dict(path)


def test_empty_missing_and_unknown_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointReadError, match="empty"):
        read_state_dict(empty)
    with pytest.raises(FileNotFoundError, match="not found"):
        read_state_dict(tmp_path / "nope.safetensors")
    odd = tmp_path / "weights.xyz"
    odd.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"\.safetensors"):
        read_state_dict(odd)


# ------------------------------------------------------------------ naming schemes
def test_detects_each_scheme_and_wrapper_prefix() -> None:
    assert detect_scheme(read_state_dict(TINY_SR)) == ("timm", "")
    assert detect_scheme(read_state_dict(FIXTURES / "tiny_sr_official.npz")) == ("official", "")
    assert detect_scheme(read_state_dict(FIXTURES / "tiny_li_hf.safetensors")) == ("hf", "pvt_v2.")
    wrapped = {f"module.{k}": v for k, v in read_state_dict(TINY_SR).items()}
    assert detect_scheme(wrapped) == ("timm", "module.")
    with pytest.raises(ValueError, match="does not look like a PVT-v2"):
        detect_scheme({"conv1.weight": np.zeros(1), "fc.bias": np.zeros(1)})


def test_hf_key_and_value_are_merged_into_kv() -> None:
    hf = read_state_dict(FIXTURES / "tiny_li_hf.safetensors")
    canon_hf, _ = to_canonical(hf)
    canon_timm, _ = to_canonical(read_state_dict(TINY_LI))
    assert canon_hf.keys() == canon_timm.keys()
    kv = canon_hf["stage2.block1.attn.kv.weight"]
    key = hf["pvt_v2.encoder.layers.1.blocks.1.attention.key.weight"]
    value = hf["pvt_v2.encoder.layers.1.blocks.1.attention.value.weight"]
    np.testing.assert_array_equal(kv, np.concatenate([key, value]))
    np.testing.assert_array_equal(kv, canon_timm["stage2.block1.attn.kv.weight"])


def test_canonical_names_cover_every_model_weight() -> None:
    config = fixture_config("tiny_sr")
    model = PVT_V2(config)
    targets = model_targets(model)
    state, _ = to_canonical(read_state_dict(TINY_SR))
    assert set(targets) == set(state)
    assert sum(int(np.prod(t.variable.shape)) for t in targets.values()) == model.count_params()


# ------------------------------------------------------------------ architecture inference
def test_infers_presets_from_tensor_shapes() -> None:
    name, config = infer_config(to_canonical(b0_state())[0])
    assert name == "b0" and config.num_classes == 1000
    li = PVT_V2("b2_li", classes=7)
    fake = {k: np.zeros(t.torch_shape, np.float32) for k, t in model_targets(li).items()}
    name, config = infer_config(fake)
    assert (name, config.linear, config.num_classes) == ("b2_li", True, 7)


def test_custom_architecture_needs_an_explicit_config() -> None:
    with pytest.raises(ValueError, match="number of attention heads"):
        infer_config(to_canonical(read_state_dict(TINY_LI))[0])


# ------------------------------------------------------------------ mismatch reports
def test_wrong_architecture_lists_what_did_not_match() -> None:
    model = PVT_V2(fixture_config("tiny_li"))
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(model, b0_state(), config=fixture_config("tiny_li"))
    message = str(info.value)
    assert "PVT-v2-b0 weights" in message and "PVT_V2('b0'" in message
    assert "missing from the checkpoint" in message  # Li's 1x1 reductions in stage 4
    assert "unexpected in the checkpoint" in message  # b0's extra blocks
    assert "with the wrong shape" in message and "... and" in message
    assert info.value.missing and info.value.unexpected and info.value.mismatched


@pytest.mark.all_backends
def test_missing_unexpected_and_misshaped_keys_are_counted() -> None:
    config = fixture_config("tiny_sr")
    state = dict(read_state_dict(TINY_SR))
    del state["stages.1.blocks.0.attn.q.weight"]
    state["stages.1.blocks.0.attn.extra.weight"] = np.zeros(3, np.float32)
    state["stages.0.norm.weight"] = np.zeros(5, np.float32)
    model = PVT_V2(config)
    initial = [keras.ops.convert_to_numpy(v).copy() for v in model.weights]
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(model, state)
    error = info.value
    assert error.missing == ["stage2.block0.attn.q.weight"]
    assert error.unexpected == ["stage2.block0.attn.extra.weight"]
    assert error.mismatched == [("stage1.norm.weight", (5,), (8,))]
    assert "1 key(s) missing" in str(error) and "(5,) vs (8,)" in str(error)
    # All or nothing: the failed load wrote no variable.
    for value, variable in zip(initial, model.weights):
        np.testing.assert_array_equal(value, keras.ops.convert_to_numpy(variable))


@pytest.mark.all_backends
def test_head_is_skipped_cleanly() -> None:
    config = fixture_config("tiny_sr")
    backbone = PVT_V2(config, include_top=False, pooling="avg")
    report = load_checkpoint(backbone, TINY_SR)
    assert "head.weight" in report["skipped"]
    other = PVT_V2(config, classes=3)
    with pytest.warns(UserWarning, match="keeps its initial weights"):
        report = load_checkpoint(other, TINY_SR)
    assert "stage4.norm.weight" in report["loaded"] and "head.weight" not in report["loaded"]
    with pytest.raises(CheckpointMismatchError, match=r"head\.weight"):
        load_checkpoint(PVT_V2(config, classes=3), TINY_SR, head="require")


def test_checkpoint_into_a_foreign_model_is_refused() -> None:
    import keras

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="no layer 'stage1'"):
        load_checkpoint(model, TINY_SR)


# ------------------------------------------------------------------ weights= and from_checkpoint
@pytest.mark.parametrize(
    ("name", "filename"),
    [
        ("tiny_sr", "tiny_sr_official.npz"),
        ("tiny_sr", "tiny_sr_official.pth"),
        ("tiny_li", "tiny_li_hf.safetensors"),
    ],
)
@pytest.mark.all_backends
def test_weights_argument_accepts_checkpoint_paths(name: str, filename: str) -> None:
    model = PVT_V2(fixture_config(name), weights=str(FIXTURES / filename), classifier_activation=None)
    case = f"{name}/97x131"
    assert relative_error(model(images(case)), expected(case, "logits")) < 1e-4


@pytest.mark.all_backends
def test_weights_argument_accepts_keras_weights_and_reports_corruption(tmp_path: Path) -> None:
    config = fixture_config("tiny_li")
    source = PVT_V2(config, weights=FIXTURES / "tiny_li_timm.safetensors")
    path = tmp_path / "tiny.weights.h5"
    source.save_weights(str(path))
    clone = PVT_V2(config, weights=str(path))
    x = images("tiny_li/45x60")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(clone(x)), keras.ops.convert_to_numpy(source(x)), rtol=0, atol=1e-6
    )
    broken = tmp_path / "broken.weights.h5"
    broken.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointReadError, match="truncated or corrupt"):
        PVT_V2(config, weights=str(broken))
    with pytest.raises(FileNotFoundError, match="no such file"):
        PVT_V2(config, weights=str(tmp_path / "absent.safetensors"))


def test_from_checkpoint_builds_the_right_model() -> None:
    model = from_checkpoint(b0_state(), classifier_activation=None)
    assert model.name == "pvt_v2_b0"
    assert relative_error(model(images("b0/97x131")), expected("b0/97x131", "logits")) < 1e-4
    tiny = from_checkpoint(TINY_LI, config=fixture_config("tiny_li").to_dict(), include_top=False)
    assert "head" not in [layer.name for layer in tiny.layers]
    with pytest.raises(ValueError, match="does not fit the checkpoint"):
        from_checkpoint(b0_state(), variant="b1")


# ------------------------------------------------------------------ a task model's checkpoint
def _toy_detector() -> keras.Model:
    """A PVT-v2 backbone nested in a task model with one 1x1 conv head, as a new head would be."""
    backbone = PVT_V2(fixture_config("tiny_sr"), features_only=True, name="pvt_v2")
    images = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(2, 1, name="cls")(backbone(images)["stage4"])
    return keras.Model(images, outputs, name="toy_detector")


def _toy_head_targets(model: keras.Model) -> dict:
    targets: dict = {}
    add_layer(targets, "bbox_head.cls", model.get_layer("cls"), conv_kernel)
    return targets


TOY = HeadCheckpoint(
    task="a toy detector",
    head_targets=_toy_head_targets,
    backbone=lambda model: model.get_layer("pvt_v2"),
    classifier="bbox_head.cls.weight",
    rebuild="toy detector",
    backbone_hint="Backbone-only weights go to the backbone.",
)


@pytest.mark.all_backends
def test_a_new_head_plugs_in_with_its_key_map_alone() -> None:
    official = read_state_dict(FIXTURES / "tiny_sr_official.npz")
    width = int(official["norm4.weight"].shape[0])
    rng = np.random.default_rng(0)
    head = {
        "bbox_head.cls.weight": rng.normal(size=(2, width, 1, 1)).astype(np.float32),
        "bbox_head.cls.bias": np.array([0.5, -0.5], np.float32),
    }
    state = {**{f"backbone.{k}": v for k, v in official.items()}, **head}
    model = _toy_detector()
    report = load_head_checkpoint(model, state, TOY)
    backbone_keys = {f"backbone.{k}" for k in model_targets(model.get_layer("pvt_v2"))}
    assert set(report["loaded"]) == backbone_keys | set(head)
    kernel = keras.ops.convert_to_numpy(model.get_layer("cls").kernel)
    np.testing.assert_array_equal(kernel, head["bbox_head.cls.weight"].transpose(2, 3, 1, 0))
    reference = PVT_V2(fixture_config("tiny_sr"), features_only=True, weights=official)
    for ours, theirs in zip(model.get_layer("pvt_v2").weights, reference.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs))
    assert checkpoint_classes(state, TOY) == 2
    fresh = _toy_detector()
    before = [keras.ops.convert_to_numpy(w).copy() for w in fresh.weights]
    with pytest.raises(CheckpointMismatchError, match=r"bbox_head\.cls\.bias") as info:
        load_head_checkpoint(fresh, {k: v for k, v in state.items() if k != "bbox_head.cls.bias"}, TOY)
    assert info.value.missing == ["bbox_head.cls.bias"]
    with pytest.raises(CheckpointMismatchError, match="Backbone-only weights go to the backbone"):
        load_head_checkpoint(fresh, official, TOY)
    for old, new in zip(before, fresh.weights, strict=True):  # nothing was written
        np.testing.assert_array_equal(old, keras.ops.convert_to_numpy(new))


# ------------------------------------------------------------------ weights="imagenet"
def _b0_file(directory: Path) -> Path:
    path = directory / "pvt_b0.safetensors"
    save_file(b0_state(), str(path))
    return path


@pytest.fixture
def local_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A file server on 127.0.0.1 holding a b0 checkpoint, registered as the b0 ImageNet URL."""
    served = tmp_path / "served"
    served.mkdir()
    path = _b0_file(served)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{path.name}"
    entry = pretrained.PretrainedCheckpoint(url, pretrained.sha256_of(path), "pvt_v2_b0.test.safetensors")
    monkeypatch.setitem(pretrained.IMAGENET, "b0", entry)
    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(pretrained.OFFLINE_ENV, raising=False)
    yield entry, server
    server.shutdown()
    server.server_close()


def test_imagenet_downloads_verifies_caches_and_converts(local_hub) -> None:
    entry, server = local_hub
    model = PVTV2B0(classifier_activation=None)  # weights="imagenet" is the default
    assert relative_error(model(images("b0/224x224")), expected("b0/224x224", "logits")) < 1e-4
    cached = pretrained.cache_path("b0")
    assert cached.is_file() and pretrained.sha256_of(cached) == entry.sha256
    server.shutdown()  # from now on only the cache can serve the file
    backbone = PVTV2B0(include_top=False, features_only=True)
    out = backbone(images("b0/97x131"))
    assert relative_error(out["stage3"], expected("b0/97x131", "stage3")) < 1e-4


def test_imagenet_rejects_a_file_with_the_wrong_hash(local_hub, monkeypatch) -> None:
    entry, _ = local_hub
    monkeypatch.setitem(
        pretrained.IMAGENET, "b0", pretrained.PretrainedCheckpoint(entry.url, "0" * 64, entry.fname)
    )
    with pytest.raises(pretrained.PretrainedWeightsUnavailableError, match="pinned sha256"):
        pretrained.fetch("b0")
    assert not pretrained.cache_path("b0").exists()


def test_imagenet_unpinned_hash_warns_with_the_hash(local_hub, monkeypatch) -> None:
    entry, _ = local_hub
    monkeypatch.setitem(
        pretrained.IMAGENET, "b0", pretrained.PretrainedCheckpoint(entry.url, None, entry.fname)
    )
    with pytest.warns(UserWarning, match=entry.sha256):
        pretrained.fetch("b0")


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_imagenet_offline_fails_fast_and_says_how_to_use_a_local_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/model.safetensors"
    monkeypatch.setitem(
        pretrained.IMAGENET,
        "b0",
        pretrained.PretrainedCheckpoint(url, "1" * 64, "pvt_v2_b0.test.safetensors"),
    )
    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(pretrained.OFFLINE_ENV, raising=False)
    start = time.monotonic()
    with pytest.raises(OSError, match=r"weights='/path/to/model.safetensors'") as info:
        PVTV2B0()
    assert time.monotonic() - start < 10
    assert url in str(info.value) and str(pretrained.cache_path("b0")) in str(info.value)
    monkeypatch.setenv(pretrained.OFFLINE_ENV, "1")
    with pytest.raises(pretrained.PretrainedWeightsUnavailableError, match="KERAS_PVT_OFFLINE"):
        pretrained.fetch("b0")


def test_default_cache_is_under_keras_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No cache override: the real default path, as a user without any settings gets it.
    monkeypatch.delenv(pretrained.CACHE_ENV, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv(pretrained.OFFLINE_ENV, "1")
    assert pretrained.cache_path("b0").parent == tmp_path / pretrained.CACHE_SUBDIR
    with pytest.raises(pretrained.PretrainedWeightsUnavailableError, match="KERAS_PVT_OFFLINE"):
        PVTV2B0()
    monkeypatch.delenv("KERAS_HOME")
    assert pretrained.cache_path("b0").parent == Path.home() / ".keras" / pretrained.CACHE_SUBDIR


def test_imagenet_uses_a_prefilled_cache_without_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv(pretrained.OFFLINE_ENV, "1")
    source = _b0_file(tmp_path)
    entry = pretrained.PretrainedCheckpoint(
        f"http://127.0.0.1:{_closed_port()}/x", pretrained.sha256_of(source), "pvt_v2_b0.test.safetensors"
    )
    monkeypatch.setitem(pretrained.IMAGENET, "b0", entry)
    pretrained.cache_path("b0").parent.mkdir(parents=True)
    shutil.copy(source, pretrained.cache_path("b0"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = PVTV2B0(include_top=False, pooling="avg")
    assert model.output_shape == (None, 256)


def test_imagenet_argument_errors() -> None:
    with pytest.raises(ValueError, match="classes=1000"):
        PVTV2B0(weights="imagenet", classes=10)
    with pytest.raises(ValueError, match="preset architectures"):
        PVT_V2(fixture_config("tiny_sr"), weights="imagenet", include_top=False)
    assert set(pretrained.IMAGENET) == {"b0", "b1", "b2", "b2_li", "b3", "b4", "b5"}
    for entry in pretrained.IMAGENET.values():
        assert entry.url.startswith("https://huggingface.co/timm/pvt_v2_")
        assert entry.sha256 is None or len(entry.sha256) == 64
