"""`SemanticFPN(weights=...)`: mmseg checkpoints (meta with NumPy scalars and mmengine objects,
read without torch), class-count inference and the errors for files that do not fit."""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from _pvt_reference import FIXTURES
from test_segmentation_model import SEG_CHECKPOINT, fixture_backbone, fixture_segmenter

from keras_pvt.checkpoints import (
    CheckpointMismatchError,
    CheckpointReadError,
    CheckpointValueError,
    UnsafeCheckpointError,
    read_state_dict,
    torch_pickle,
)
from keras_pvt.segmentation import SemanticFPN

TINY = {"fpn_channels": 16, "head_channels": 8}


@pytest.fixture(scope="module")
def mmseg_state() -> dict[str, np.ndarray]:
    return read_state_dict(SEG_CHECKPOINT)


def _rewrite_pickle(path: Path, source: Path, old: bytes, new: bytes) -> Path:
    """A copy of the torch zip `source` whose data.pkl has `old` replaced by `new`."""
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(path, "w") as out:
        for info in archive.infolist():
            data = archive.read(info)
            if info.filename.endswith("/data.pkl"):
                assert old in data
                data = data.replace(old, new)
            out.writestr(info, data)
    return path


@pytest.mark.all_backends
def test_mmseg_meta_reads_without_running_anything() -> None:
    dump = torch_pickle.load(SEG_CHECKPOINT)
    meta = dump["meta"]
    assert meta["CLASSES"] == ("background", "square", "disc") and meta["iter"] == 40000
    assert meta["seed"] == 0 and meta["seed"].dtype == np.int64
    assert meta["hook_msgs"]["best_score"] == np.float64(0.372)
    assert isinstance(meta["cfg"], torch_pickle.Placeholder)  # mmengine's ConfigDict, never imported
    assert "mmengine.config.config.ConfigDict" in repr(meta["cfg"])


@pytest.mark.all_backends
def test_numpy_1_scalar_spelling_loads_too(tmp_path: Path) -> None:
    path = _rewrite_pickle(
        tmp_path / "np1.pth",
        SEG_CHECKPOINT,
        b"numpy._core.multiarray\nscalar",
        b"numpy.core.multiarray\nscalar",
    )
    assert torch_pickle.load(path)["meta"]["hook_msgs"]["best_score"] == np.float64(0.372)


@pytest.mark.all_backends
def test_objects_among_the_tensors_or_other_code_are_refused(tmp_path: Path, monkeypatch) -> None:
    # Any other global in the meta is still refused by name (nothing runs).
    source = SEG_CHECKPOINT
    pickled = zipfile.ZipFile(source).read("seg_tiny_mmseg/data.pkl")
    assert b"mmengine.config.config\nConfigDict" in pickled
    path = _rewrite_pickle(
        tmp_path / "code.pth", source, b"mmengine.config.config\nConfigDict", b"os\nsystem"
    )
    with pytest.raises(UnsafeCheckpointError, match=r"'os\.system'"):
        read_state_dict(path)
    # An mmengine object where a tensor belongs: refused, not silently dropped.
    dump = torch_pickle.load(SEG_CHECKPOINT)
    dump["state_dict"]["decode_head.conv_seg.bias"] = dump["meta"]["cfg"]
    monkeypatch.setattr(torch_pickle, "load", lambda path: dump)
    with pytest.raises(UnsafeCheckpointError, match=r"'decode_head\.conv_seg\.bias': <mmengine"):
        read_state_dict(SEG_CHECKPOINT)


@pytest.mark.all_backends
def test_class_count_is_inferred_or_checked(mmseg_state: dict[str, np.ndarray]) -> None:
    model = SemanticFPN(fixture_backbone(), None, weights=SEG_CHECKPOINT, **TINY)
    assert model.output.shape[-1] == 3
    with pytest.raises(
        CheckpointMismatchError, match=r"has 3 classes and the model 150: build it with num_classes=3"
    ):
        SemanticFPN(fixture_backbone(), weights=mmseg_state, **TINY)
    with pytest.raises(ValueError, match="num_classes=None takes the class count"):
        SemanticFPN(fixture_backbone(), None, **TINY)


@pytest.mark.all_backends
def test_missing_and_mis_shaped_keys_are_listed(mmseg_state: dict[str, np.ndarray]) -> None:
    state = {k: v for k, v in mmseg_state.items() if not k.startswith("decode_head.scale_heads.3.4.")}
    with pytest.raises(CheckpointMismatchError, match=r"missing from the checkpoint") as error:
        SemanticFPN(fixture_backbone(), 3, weights=state, **TINY)
    assert "decode_head.scale_heads.3.4.conv.weight" in error.value.missing
    assert "decode_head.scale_heads.3.4.bn.running_var" in error.value.missing
    with pytest.raises(CheckpointMismatchError, match=r"neck.fpn_convs.0.conv.weight: \(16, 16, 3, 3\) vs"):
        SemanticFPN(fixture_backbone(), 3, weights=mmseg_state, fpn_channels=8, head_channels=8)
    broken = {k: v for k, v in mmseg_state.items() if k != "backbone.norm4.weight"}
    with pytest.raises(CheckpointMismatchError, match=r"backbone\.stage4\.norm\.weight"):
        SemanticFPN(fixture_backbone(), 3, weights=broken, **TINY)


@pytest.mark.all_backends
def test_nothing_is_written_when_the_head_does_not_fit(mmseg_state: dict[str, np.ndarray]) -> None:
    from keras_pvt.segmentation import load_segmenter_weights

    model = SemanticFPN(fixture_backbone(), 3, **TINY)
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.weights]
    state = {**mmseg_state, "auxiliary_head.conv_seg.weight": np.zeros((3, 8, 1, 1), np.float32)}
    with pytest.raises(CheckpointMismatchError, match=r"auxiliary_head\.conv_seg\.weight"):
        load_segmenter_weights(model, state)
    for old, new in zip(before, model.weights, strict=True):
        np.testing.assert_array_equal(old, keras.ops.convert_to_numpy(new))


@pytest.mark.all_backends
def test_non_finite_or_integer_head_tensors_are_refused_by_the_shared_check(
    mmseg_state: dict[str, np.ndarray],
) -> None:
    state = dict(mmseg_state)
    bad = np.array(state["decode_head.conv_seg.weight"], np.float32)
    bad.flat[0], bad.flat[1] = np.nan, np.inf
    state["decode_head.conv_seg.weight"] = bad
    state["neck.fpn_convs.0.conv.bias"] = np.zeros(16, np.int32)
    with pytest.raises(CheckpointValueError) as info:
        SemanticFPN(fixture_backbone(), 3, weights=state, **TINY)
    assert info.value.not_finite == ["decode_head.conv_seg.weight (1 NaN, 1 inf)"]
    assert info.value.not_float == ["neck.fpn_convs.0.conv.bias (int32)"]


@pytest.mark.all_backends
def test_backbone_only_and_corrupt_files_are_explained(tmp_path: Path) -> None:
    with pytest.raises(CheckpointMismatchError, match="use backbone_weights="):
        SemanticFPN(fixture_backbone(), 3, weights=FIXTURES / "tiny_sr_official.pth", **TINY)
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(SEG_CHECKPOINT.read_bytes()[:5000])
    with pytest.raises(CheckpointReadError, match=r"cut\.pth"):
        SemanticFPN(fixture_backbone(), 3, weights=truncated, **TINY)
    not_keras = tmp_path / "junk.weights.h5"
    not_keras.write_bytes(b"not hdf5")
    with pytest.raises(CheckpointReadError, match="is not a Keras weights"):
        SemanticFPN(fixture_backbone(), 3, weights=not_keras, **TINY)
    with pytest.raises(FileNotFoundError, match="no such file"):
        SemanticFPN(fixture_backbone(), 3, weights=tmp_path / "absent.pth", **TINY)


@pytest.mark.all_backends
def test_own_keras_weights_load_back(tmp_path: Path) -> None:
    model = fixture_segmenter()
    path = tmp_path / "seg.weights.h5"
    model.save_weights(path)
    again = SemanticFPN(fixture_backbone(), 3, weights=path, **TINY)
    for ours, theirs in zip(model.weights, again.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs))
    with pytest.raises(ValueError, match="Build the same segmenter"):
        SemanticFPN(fixture_backbone(), 5, weights=path, **TINY)
