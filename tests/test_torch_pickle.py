"""The torch-free `.pth` reader against files written by `torch.save` (see make_torch_pickles.py)."""

from __future__ import annotations

import shutil
import sys
import zipfile
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from _pvt_reference import FIXTURES

from keras_pvt.checkpoints import CheckpointReadError, read_state_dict, torch_pickle

ZIP = FIXTURES / "torch_zip.pth"
LEGACY = FIXTURES / "torch_legacy.pth"
BIG_ENDIAN = FIXTURES / "torch_big_endian.pth"
# The plain Python values of make_torch_pickles.META, as the reader must give them back.
META = {
    "epoch": 3,
    "lr": 0.1,
    "name": "tiny",
    "classes": ("cat", "dog"),
    "ids": {1, 2},
    "frozen": frozenset({"a"}),
    "blob": b"\x00\xffabc",
    "buffer": bytearray(b"xy"),
    "z": 1 + 2j,
    "none": None,
    "flag": True,
    "ordered": OrderedDict(a=1),
    "nested": [{"k": [1, 2.5]}],
}


@lru_cache(maxsize=1)
def expected() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "torch_pickles_expected.npz") as archive:
        return {key: archive[key] for key in archive.files}


def _assert_same(got: np.ndarray, want: np.ndarray, name: str) -> None:
    assert got.shape == want.shape, name
    if got.dtype.name == "bfloat16":  # stored widened to float32 in the .npz (exact)
        got = got.astype(np.float32)
    assert got.dtype == want.dtype, name
    np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("path", [ZIP, LEGACY], ids=["zip", "legacy"])
def test_reads_every_tensor_exactly_as_torch_saved_it(path: Path) -> None:
    dump = torch_pickle.load(path)
    state = dump["state_dict"]
    assert isinstance(state, OrderedDict)
    names = [key.split("/", 1)[1] for key in expected() if key.startswith("state_dict/")]
    if path == LEGACY:
        names.remove("uint16")  # not in the legacy file: torch cannot load it back from that layout
    assert list(state) == names
    for name in names:
        assert isinstance(state[name], torch_pickle.TorchTensor)
        _assert_same(state[name].numpy(), expected()[f"state_dict/{name}"], name)
    assert state["bf16"].dtype.name == "bfloat16" and state["half"].dtype == np.float16
    assert state["scalar"].shape == () and state["empty"].shape == (0, 3)
    step = dump["optimizer"]["state"][0]["step"]  # integer dict keys survive
    _assert_same(step.numpy(), expected()["optimizer/step"], "step")
    assert dump["optimizer"]["param_groups"] == [{"lr": 0.1, "params": [0]}]


@pytest.mark.parametrize("path", [ZIP, LEGACY], ids=["zip", "legacy"])
def test_plain_python_metadata_comes_back(path: Path) -> None:
    meta = torch_pickle.load(path)["meta"]
    assert meta == META
    assert type(meta["buffer"]) is bytearray and type(meta["ordered"]) is OrderedDict


def test_views_of_one_storage_are_independent_copies() -> None:
    state = torch_pickle.load(ZIP)["state_dict"]
    base, view = state["view.base"].numpy(), state["view.offset"].numpy()
    np.testing.assert_array_equal(view, base[1:3, 2:])  # storage offset 7, strides (5, 1)
    assert state["view.base"].storage is state["view.offset"].storage
    assert state["view.offset"].offset == 7 and state["fc.weight_t"].stride == (1, 5)
    assert state["expanded"].stride == (0, 1)
    for array in (base, view, state["fc.weight_t"].numpy()):
        assert array.flags.c_contiguous and array.flags.writeable
    base[:] = 0
    assert np.any(state["view.offset"].numpy() != 0)


def test_big_endian_archive_is_byte_swapped() -> None:
    tensors = torch_pickle.load(BIG_ENDIAN)
    assert {t.storage.big_endian for t in tensors.values()} == {True}
    for name, tensor in tensors.items():
        _assert_same(tensor.numpy(), expected()[f"big_endian/{name}"], name)


def test_archive_without_byteorder_record_is_little_endian(tmp_path: Path) -> None:
    path = tmp_path / "old.pth"  # torch < 2.1 wrote no byteorder record
    with zipfile.ZipFile(ZIP) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            if not info.filename.endswith("/byteorder"):
                target.writestr(info.filename, source.read(info))
    got = torch_pickle.load(path)["state_dict"]["conv.weight"].numpy()
    np.testing.assert_array_equal(got, expected()["state_dict/conv.weight"])


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".bin", ".ckpt"])
def test_read_state_dict_unwraps_and_widens_without_torch(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` would raise ImportError
    path = tmp_path / f"dump{suffix}"
    shutil.copy(LEGACY if suffix == ".pt" else ZIP, path)
    state = read_state_dict(path)  # the tensors under "state_dict"; meta and optimizer ignored
    assert "conv.weight" in state and "meta" not in state and "step" not in state
    for name in ("half", "bf16"):
        assert state[name].dtype == np.float32
        np.testing.assert_array_equal(state[name], expected()[f"state_dict/{name}"].astype(np.float32))
    assert state["int8"].dtype == np.int8 and state["mask"].dtype == np.bool_  # kept for the checks


@pytest.mark.parametrize("path", [ZIP, LEGACY], ids=["zip", "legacy"])
def test_truncated_torch_files_are_reported(tmp_path: Path, path: Path) -> None:
    data = path.read_bytes()
    for cut in (len(data) // 3, len(data) - 40):
        broken = tmp_path / f"cut{cut}.pth"
        broken.write_bytes(data[:cut])
        with pytest.raises(CheckpointReadError, match=r"cut\d+\.pth.*(truncated|corrupt)"):
            read_state_dict(broken)


def test_zip_records_that_disagree_with_the_pickle_are_reported(tmp_path: Path) -> None:
    with zipfile.ZipFile(ZIP) as source:
        records = {info.filename: source.read(info) for info in source.infolist()}
    key = "torch_zip/data/0"
    for name, change in (("short", lambda d: d[:-4]), ("missing", None)):
        path = tmp_path / f"{name}.pth"
        with zipfile.ZipFile(path, "w") as target:
            for record, data in records.items():
                if record == key and change is None:
                    continue
                target.writestr(record, change(data) if record == key and change else data)
        with pytest.raises(CheckpointReadError, match="bytes, the pickle says" if change else "missing"):
            torch_pickle.load(path)


def test_torchscript_archives_are_named(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("scripted/constants.pkl", b"\x80\x02).")
        archive.writestr("scripted/code/__torch__.py", b"")
    with pytest.raises(CheckpointReadError, match=r"TorchScript.*state_dict"):
        read_state_dict(path)
