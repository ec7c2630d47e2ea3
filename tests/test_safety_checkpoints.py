"""Bad-input matrix, checkpoints: malicious pickles, unusable tensors, files that are not checkpoints,
a corrupt ImageNet cache and `keras-pvt convert` exit codes."""

from __future__ import annotations

import functools
import http.server
import json
import os
import pickle
import shutil
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
import pytest
from _pvt_reference import FIXTURES, b0_state, fixture_config
from safetensors.numpy import save_file

from keras_pvt import PVT_V2
from keras_pvt.checkpoints import (
    CheckpointMismatchError,
    CheckpointReadError,
    CheckpointValueError,
    UnsafeCheckpointError,
    assign_state_dict,
    load_checkpoint,
    load_keras_model,
    model_targets,
    pretrained,
    read_state_dict,
    to_canonical,
    torch_pickle,
)
from keras_pvt.checkpoints.load import load_weights
from keras_pvt.cli import main

from helpers import tiny_config

TINY_SR_PTH = FIXTURES / "tiny_sr_official.pth"


# ------------------------------------------------------------------ a small pickle assembler
# Protocol-2 opcodes written by hand, so that a test names exactly the globals it wants (the stdlib
# pickler would insist on importing them) and no torch is needed to make torch-like files.
def _value(value: Any) -> bytes:
    """A plain value as a pickle fragment (memo slots are only reused after their own use)."""
    return pickle.dumps(value, protocol=2)[2:-1]


def _global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def _call(function: bytes, *args: bytes) -> bytes:
    return function + b"(" + b"".join(args) + b"tR"


def _storage(key: str, numel: int, storage_type: str = "FloatStorage") -> bytes:
    pid = _value("storage") + _global("torch", storage_type) + _value(key) + _value("cpu") + _value(numel)
    return b"(" + pid + b"tQ"


def _tensor(key: str, numel: int, shape: tuple, stride: tuple, offset: int = 0) -> bytes:
    hooks = _call(_global("collections", "OrderedDict"))
    return _call(
        _global("torch._utils", "_rebuild_tensor_v2"),
        _storage(key, numel),
        _value(offset),
        _value(shape),
        _value(stride),
        _value(False),
        hooks,
    )


def _dict(**items: bytes) -> bytes:
    return b"}(" + b"".join(_value(key) + value for key, value in items.items()) + b"u"


def _pickle(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


def _torch_zip(path: Path, pickled: bytes, storages: dict[str, bytes] | None = None) -> Path:
    """`path` in the layout of torch.save >= 1.6."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/byteorder", b"little")
        for key, data in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", data)
        archive.writestr("archive/version", b"3\n")
    return path


def _torch_legacy(path: Path, pickled: bytes, storages: dict[str, tuple[int, bytes]] | None = None) -> Path:
    """`path` in the legacy layout: magic, version, system info, main pickle, keys, storages."""
    storages = storages or {}
    header = [torch_pickle.LEGACY_MAGIC, torch_pickle.LEGACY_PROTOCOL, {"little_endian": True}]
    data = b"".join(pickle.dumps(value, protocol=2) for value in header) + pickled
    data += pickle.dumps(sorted(storages), protocol=2)
    for key in sorted(storages):
        numel, raw = storages[key]
        data += numel.to_bytes(8, "little") + raw
    path.write_bytes(data)
    return path


def _floats(*values: float) -> bytes:
    return np.asarray(values, "<f4").tobytes()


def test_the_assembler_makes_files_the_reader_accepts(tmp_path: Path) -> None:
    body = _dict(w=_tensor("0", 6, (2, 2), (1, 2), offset=1))  # a transposed view at offset 1
    for path in (
        _torch_zip(tmp_path / "a.pth", _pickle(body), {"0": _floats(0, 1, 2, 3, 4, 5)}),
        _torch_legacy(tmp_path / "b.pth", _pickle(body), {"0": (6, _floats(0, 1, 2, 3, 4, 5))}),
    ):
        np.testing.assert_array_equal(read_state_dict(path)["w"], [[1, 3], [2, 4]])


# ------------------------------------------------------------------ item 9: malicious pickles
def _payloads(marker: Path) -> dict[str, bytes]:
    """Pickled calls that would create `marker` if anything executed them."""
    touch = f"touch {marker}"
    create = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": _call(_global("os", "system"), _value(touch)),
        "posix.system": _call(_global("posix", "system"), _value(touch)),
        "builtins.eval": _call(_global("builtins", "eval"), _value(create)),
        "__builtin__.exec": _call(_global("__builtin__", "exec"), _value(create)),
        "subprocess.Popen": _call(_global("subprocess", "Popen"), _value(["touch", str(marker)])),
        "builtins.getattr": _call(_global("builtins", "getattr"), _value("x"), _value("y")),
        "torch.load": _call(_global("torch", "load"), _value(str(marker))),
        "torch._utils._rebuild_device_tensor_from_numpy": _call(
            _global("torch._utils", "_rebuild_device_tensor_from_numpy"), _value(None)
        ),
        "numpy.core.multiarray._reconstruct": _call(
            _global("numpy.core.multiarray", "_reconstruct"), _value(None)
        ),
        "copyreg._reconstructor": _call(_global("copyreg", "_reconstructor"), _value(None)),
    }


class _Evil:
    """What an attacker pickles with the stdlib: `os.system(...)` through __reduce__."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple:
        return os.system, (self.command,)


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_malicious_pickles_are_refused_by_name_and_nothing_runs(tmp_path: Path, layout: str) -> None:
    marker = tmp_path / "marker"
    weights = _tensor("0", 2, (2,), (1,))
    make = _torch_zip if layout == "zip" else _torch_legacy
    storages: Any = {"0": _floats(1, 2)} if layout == "zip" else {"0": (2, _floats(1, 2))}
    for name, payload in _payloads(marker).items():
        # Hidden next to a genuine tensor, inside a training-style dump.
        body = _dict(state_dict=_dict(w=weights), meta=_dict(note=payload))
        path = make(tmp_path / f"{name}.pth", _pickle(body), storages)
        with pytest.raises(UnsafeCheckpointError, match=rf"asks for '{name}'.*never executes"):
            read_state_dict(path)
    # The stdlib pickler's own output, protocol 2 (GLOBAL) and 4 (STACK_GLOBAL).
    for protocol in (2, 4):
        evil = pickle.dumps({"w": _Evil(f"touch {marker}")}, protocol=protocol)
        path = make(tmp_path / f"stdlib{protocol}.pth", evil)
        with pytest.raises(UnsafeCheckpointError, match=r"asks for '(posix|os)\.system'"):
            read_state_dict(path)
    assert not marker.exists()


def test_malicious_pickle_in_the_legacy_header_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "header.pth"  # the very first pickle of the file is the payload
    path.write_bytes(pickle.dumps(_Evil(f"touch {marker}"), protocol=2))
    with pytest.raises(UnsafeCheckpointError, match="system"):
        read_state_dict(path)
    assert not marker.exists()


def test_allowed_names_cannot_be_abused(tmp_path: Path) -> None:
    cases = [
        ("to rebuild bytes", _call(_global("_codecs", "encode"), _value("x"), _value("rot13"))),
        ("to rebuild bytes", _call(_global("__builtin__", "bytearray"), _value(10**12))),
        (
            "other than a tensor rebuild",
            _call(
                _global("torch._tensor", "_rebuild_from_type_v2"),
                _global("__builtin__", "set"),
                _global("torch", "Tensor"),
                _value(((1, 2),)),
                _value({}),
            ),
        ),
        ("set the state", _storage("0", 2) + _value({"nbytes": 10**12}) + b"b"),  # BUILD
        ("not to a storage", b"(" + _value("module") + _value("os") + b"tQ"),
        ("not a non-negative integer", _tensor("0", 2, (2,), (-1,))),
        ("reaches past the end", _tensor("0", 2, (3,), (1,))),
        ("repeats", _tensor("0", 2, (1 << 30,), (0,))),
    ]
    for index, (message, body) in enumerate(cases):
        path = _torch_zip(tmp_path / f"case{index}.pth", _pickle(_dict(w=body)), {"0": _floats(1, 2)})
        with pytest.raises(CheckpointReadError, match=message):
            torch_pickle.load(path)


def test_malicious_weights_are_refused_by_the_builder_and_the_cli(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "marker"
    path = _torch_zip(tmp_path / "evil.pth", pickle.dumps({"w": _Evil(f"touch {marker}")}, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match="system"):
        PVT_V2(tiny_config(), weights=str(path))
    assert main(["convert", str(path), "-o", str(tmp_path / "out.keras")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("keras-pvt convert: error: Refusing to load") and "Traceback" not in err
    assert not marker.exists() and not (tmp_path / "out.keras").exists()


# ------------------------------------------------------------------ item 8: unusable tensors
@pytest.fixture(scope="module")
def tiny_state() -> dict[str, np.ndarray]:
    return to_canonical(read_state_dict(FIXTURES / "tiny_sr_timm.safetensors"))[0]


def _weights(model: Any) -> list[np.ndarray]:
    return [np.asarray(v).copy() for v in model.weights]


def test_non_float_tensors_are_refused_naming_them(tiny_state: dict[str, np.ndarray]) -> None:
    model = PVT_V2(fixture_config("tiny_sr"))
    before = _weights(model)
    state = dict(tiny_state)
    kernels = [k for k in state if k.endswith(".weight") and state[k].ndim == 2]
    for key in kernels:
        state[key] = np.clip(np.round(state[key] * 100), -127, 127).astype(np.int8)
    state["stage1.norm.weight"] = state["stage1.norm.weight"] > 0
    with pytest.raises(CheckpointValueError) as info:
        assign_state_dict(model, state)
    message = str(info.value)
    assert f"{len(kernels) + 1} key(s) not floating point" in message
    listed = {f"{key} (int8)" for key in kernels} | {"stage1.norm.weight (bool)"}
    assert set(info.value.not_float) == listed
    assert info.value.not_float[0] in message and f"... and {len(listed) - 5} more" in message
    assert "Dequantise" in message and "nothing was loaded" in message
    for old, variable in zip(before, model.weights):  # all or nothing
        np.testing.assert_array_equal(old, np.asarray(variable))


def test_non_finite_tensors_are_refused_with_counts(tiny_state: dict[str, np.ndarray]) -> None:
    model = PVT_V2(fixture_config("tiny_sr"))
    before = _weights(model)
    state = dict(tiny_state)
    state["stage2.norm.bias"] = state["stage2.norm.bias"].copy()
    state["stage2.norm.bias"][:3] = np.nan
    state["head.bias"] = state["head.bias"].astype(np.float64)
    state["head.bias"][0] = 1e300  # finite in float64, inf in float32
    with pytest.raises(CheckpointValueError) as info:
        load_checkpoint(model, state)
    assert info.value.not_finite == ["stage2.norm.bias (3 NaN, 0 inf)", "head.bias (0 NaN, 1 inf)"]
    assert "NaN or infinite" in str(info.value) and "another checkpoint" in str(info.value)
    for old, variable in zip(before, model.weights):
        np.testing.assert_array_equal(old, np.asarray(variable))


def test_integer_bookkeeping_buffers_are_skipped(tiny_state: dict[str, np.ndarray]) -> None:
    model = PVT_V2(fixture_config("tiny_sr"))
    state = {**tiny_state, "stage1.patch_embed.norm.num_batches_tracked": np.array(7, np.int64)}
    report = assign_state_dict(model, state)
    assert "stage1.patch_embed.norm.num_batches_tracked" in report["skipped"]
    # Anything else that is not a weight of the model is still reported.
    state["stage1.extra.counter"] = np.array(1, np.int64)
    with pytest.raises(CheckpointMismatchError, match=r"stage1\.extra\.counter"):
        assign_state_dict(model, state)


def test_torch_checkpoint_with_int_tensor_is_refused_end_to_end(tmp_path: Path) -> None:
    # A genuine torch file whose kernel was saved as int8: read fine, refused at assignment.
    state = read_state_dict(TINY_SR_PTH)
    targets = model_targets(PVT_V2(fixture_config("tiny_sr")))
    assert len(targets) == len(state)
    path = tmp_path / "quantised.npz"
    np.savez(path, **{**state, "head.weight": state["head.weight"].astype(np.int8)})
    with pytest.raises(CheckpointValueError, match=r"head\.weight \(int8\)"):
        PVT_V2(fixture_config("tiny_sr"), weights=str(path))


def _with_a_nan(h5_file: Any) -> str:
    """Write a NaN into the first float weight of an open Keras weights file; its name."""
    names: list[str] = []
    h5_file.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
    name = next(name for name in names if h5_file[name].dtype.kind == "f")
    values = h5_file[name][...]
    values.flat[0] = np.nan
    h5_file[name][...] = values
    return name


def _keras_file_with_a_nan(model: Any, path: Path) -> str:
    """Save `model` at `path` (.weights.h5 or .keras) with a NaN in one weight; that weight's name."""
    if path.name.endswith(".weights.h5"):
        model.save_weights(path)
        with h5py.File(path, "r+") as file:
            return _with_a_nan(file)
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    weights = path.with_name("inner.weights.h5")
    weights.write_bytes(members["model.weights.h5"])
    with h5py.File(weights, "r+") as file:
        name = _with_a_nan(file)
    members["model.weights.h5"] = weights.read_bytes()
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return name


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras"])
def test_keras_files_with_nan_weights_are_refused_naming_the_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"diverged{suffix}"
    name = _keras_file_with_a_nan(PVT_V2(tiny_config()), path)
    saved = path.read_bytes()
    model = PVT_V2(tiny_config())
    before = _weights(model)
    with pytest.raises(CheckpointValueError) as info:
        load_weights(model, str(path), config=tiny_config())
    message = str(info.value)
    assert f"The weights file {str(path)!r} holds values that are not usable weights" in message
    assert f"{name} (1 NaN, 0 inf)" in message and "nothing was loaded" in message
    for old, variable in zip(before, model.weights, strict=True):  # nothing was written
        np.testing.assert_array_equal(old, np.asarray(variable))
    assert path.read_bytes() == saved


def test_a_truncated_keras_weights_file_is_a_read_error(tmp_path: Path) -> None:
    path = tmp_path / "half.weights.h5"
    PVT_V2(tiny_config()).save_weights(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(
        CheckpointReadError, match=r"half\.weights\.h5' as a Keras weights.*truncated or corrupt"
    ):
        PVT_V2(tiny_config(), weights=str(path))


# ------------------------------------------------------------------ item 12: not a checkpoint
SUFFIXES = [".safetensors", ".pth", ".pt", ".bin", ".ckpt", ".npz", ".weights.h5", ".keras"]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_random_bytes_as_weights_give_a_clear_error(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"random{suffix}"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointReadError, match=rf"random{suffix}.*(corrupt|not a)") as info:
        PVT_V2(tiny_config(), weights=str(path))
    if suffix in (".keras", ".weights.h5"):  # checked before Keras sees it (no bare BadZipFile)
        assert "it is not a zip archive" in str(info.value) or "it is not an HDF5 file" in str(info.value)


def test_other_zip_files_named_keras_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "not_a_model.keras"
    shutil.copy(FIXTURES / "tiny_sr_official.npz", path)  # a zip archive, but no Keras model inside
    with pytest.raises(CheckpointReadError, match=r"not_a_model\.keras"):
        PVT_V2(tiny_config(), weights=str(path))


# ------------------------------------------------------------------ whole Keras models: one way in
def _edit_keras_config(path: Path, class_name: str, **changes: Any) -> None:
    """Rewrite the config.json of the `.keras` archive at `path`, changing every `class_name` layer."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    for layer in config["config"]["layers"]:
        if layer["class_name"] == class_name:
            layer["config"].update(changes)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)


def _refuse_to_build(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("the model was being built")


def test_keras_models_load_after_the_limits_and_finite_checks(tmp_path: Path, monkeypatch) -> None:
    model = PVT_V2(tiny_config())
    path = tmp_path / "model.keras"
    model.save(path)
    again = load_keras_model(path)
    for ours, theirs in zip(model.weights, again.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    _edit_keras_config(path, "Dense", units=2_000_000_000)
    monkeypatch.setattr(keras.saving, "load_model", _refuse_to_build)
    with pytest.raises(ValueError, match="refused before building anything") as info:
        load_keras_model(path)
    assert str(path) in str(info.value)
    assert "layer 'head' (Dense): `units` = 2000000000 is above the sanity limit" in str(info.value)
    diverged = tmp_path / "diverged.keras"
    name = _keras_file_with_a_nan(PVT_V2(tiny_config()), diverged)
    with pytest.raises(CheckpointValueError, match=rf"{name} \(1 NaN, 0 inf\)"):
        load_keras_model(diverged)
    with pytest.raises(CheckpointReadError, match="holds no model config"):
        weights_only = tmp_path / "only.weights.h5"
        model.save_weights(weights_only)
        load_keras_model(weights_only.rename(tmp_path / "only.h5"))


def test_cli_export_refuses_a_keras_model_beyond_the_limits(tmp_path: Path, capsys, monkeypatch) -> None:
    path = tmp_path / "model.keras"
    PVT_V2(tiny_config()).save(path)
    _edit_keras_config(path, "Dense", units=2_000_000_000)
    monkeypatch.setattr(keras.saving, "load_model", _refuse_to_build)
    output = tmp_path / "out.tflite"
    assert main(["export", str(path), "--format", "tflite", "--output", str(output)]) != 0
    error = capsys.readouterr().err
    assert "cannot load" in error and "`units` = 2000000000 is above the sanity limit" in error
    assert not output.exists()


# ------------------------------------------------------------------ item 12: corrupt ImageNet cache
@pytest.fixture
def imagenet_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """b0's ImageNet entry served from 127.0.0.1, with a corrupt file already in the cache."""
    served = tmp_path / "served"
    served.mkdir()
    save_file(b0_state(), str(served / "b0.safetensors"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/b0.safetensors"
    good = pretrained.sha256_of(served / "b0.safetensors")
    monkeypatch.setitem(
        pretrained.IMAGENET, "b0", pretrained.PretrainedCheckpoint(url, good, "pvt_v2_b0.test.safetensors")
    )
    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(pretrained.OFFLINE_ENV, raising=False)
    cached = pretrained.cache_path("b0")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"a user's half-copied file")
    yield cached, good, server
    server.shutdown()
    server.server_close()


def test_corrupt_cache_offline_is_reported_and_kept(imagenet_cache, monkeypatch) -> None:
    cached, good, _ = imagenet_cache
    bad = pretrained.sha256_of(cached)
    monkeypatch.setenv(pretrained.OFFLINE_ENV, "1")
    with pytest.raises(pretrained.PretrainedWeightsUnavailableError) as info:
        pretrained.fetch("b0")
    message = str(info.value)
    assert str(cached) in message and bad in message and good in message
    assert "left in place" in message and "weights=PATH" in message
    assert cached.read_bytes() == b"a user's half-copied file"


def test_corrupt_cache_online_is_set_aside_and_downloaded_again(imagenet_cache) -> None:
    cached, good, _ = imagenet_cache
    bad = pretrained.sha256_of(cached)
    aside = cached.with_name(f"{cached.name}.{bad[:12]}.corrupt")
    with pytest.warns(UserWarning, match=rf"has sha256 {bad}, not the pinned {good}.*Moved it to"):
        path = pretrained.fetch("b0")
    assert path == cached and pretrained.sha256_of(cached) == good
    assert aside.read_bytes() == b"a user's half-copied file"


def test_corrupt_cache_with_the_network_down_keeps_the_file(imagenet_cache) -> None:
    cached, _, server = imagenet_cache
    server.shutdown()
    server.server_close()
    bad = pretrained.sha256_of(cached)
    aside = cached.with_name(f"{cached.name}.{bad[:12]}.corrupt")
    with (
        pytest.warns(UserWarning, match="downloading the checkpoint again"),
        pytest.raises(pretrained.PretrainedWeightsUnavailableError) as info,
    ):
        pretrained.fetch("b0", timeout=5)
    assert f"has sha256 {bad}" in str(info.value) and str(aside) in str(info.value)
    assert aside.read_bytes() == b"a user's half-copied file"


# ------------------------------------------------------------------ item 12: convert exit codes
def test_convert_reads_a_pth_without_torch_and_fails_in_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    config = tmp_path / "tiny_sr.json"
    config.write_text(json.dumps(fixture_config("tiny_sr").to_dict()))
    output = tmp_path / "tiny.weights.h5"
    assert main(["convert", str(TINY_SR_PTH), "-o", str(output), "--config", str(config)]) == 0
    assert output.is_file() and "official naming" in capsys.readouterr().out
    for name, data in (
        ("random.pth", np.random.default_rng(1).bytes(2048)),
        ("truncated.pth", TINY_SR_PTH.read_bytes()[:5000]),
        ("empty.pth", b""),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        code = main(["convert", str(path), "-o", str(tmp_path / "x.keras"), "--config", str(config)])
        err = capsys.readouterr().err
        assert code == 2, name
        assert err.startswith("keras-pvt convert: error: ") and name in err and "Traceback" not in err
        assert err.count("\n") == 1, err
