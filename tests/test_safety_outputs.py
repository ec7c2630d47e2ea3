"""Bad-input matrix, outputs: exports and convert never destroy a user's files, replace a previous
output only with --overwrite (atomically), and survive SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import pytest
import tensorflow as tf
from _pvt_reference import FIXTURES, fixture_config

from keras_pvt import PVT_V2
from keras_pvt._safe_write import KERAS_MODEL, TFLITE, atomic_write, clean_stale, staging_name
from keras_pvt.cli import main
from keras_pvt.cli.demo_common import prepare_output
from keras_pvt.export import (
    OutputRefusedError,
    convert_to_tflite,
    export_saved_model,
    write_report_json,
)

from helpers import tiny_config

pytest.importorskip("ai_edge_litert")

SIZE = 32
CHECKPOINT = FIXTURES / "tiny_sr_official.npz"


@pytest.fixture(scope="module")
def model():
    return PVT_V2(tiny_config())


@pytest.fixture(scope="module")
def model_file(model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "small.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def previous_saved_model(model, tmp_path_factory) -> Path:
    """A SavedModel export with batch 1 (the new exports' dynamic batch tells them apart)."""
    path = tmp_path_factory.mktemp("sm") / "served"
    return Path(export_saved_model(model, path, image_size=SIZE, batch_size=1))


@pytest.fixture(scope="module")
def previous_tflite(model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tfl") / "m.tflite"
    convert_to_tflite(model, path, image_size=SIZE, batch_size=1, verify=False)
    return path


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny_sr.json"
    path.write_text(json.dumps(fixture_config("tiny_sr").to_dict()))
    return path


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and folder (None) under `root`, hidden ones included."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))
    }


def user_folder(root: Path) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").write_text("dotfile")
    (root / "notes.txt").write_text("my notes")
    (root / "sub" / "deeper" / "data.bin").write_bytes(b"\x00\x01" * 100)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main")
    return root


def export(capsys, *argv: str) -> tuple[int, str]:
    code = main(["export", *map(str, argv)])
    return code, capsys.readouterr().err


def partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


# --- refused outright: the current folder, its parents, user folders/files, the input -----------


def test_output_dot_and_parents_are_refused_and_untouched(model_file, tmp_path, monkeypatch, capsys):
    cwd = user_folder(tmp_path / "project" / "work")
    (tmp_path / "project" / "README").write_text("parent's file")
    monkeypatch.chdir(cwd)
    before = tree(tmp_path)
    for target in (".", "./", str(cwd), "..", str(tmp_path)):
        for fmt in ("saved_model", "tflite"):
            for extra in ([], ["--overwrite"]):
                code, err = export(capsys, model_file, "--format", fmt, "--output", target, *extra)
                assert code == 2 and "current folder or one of its parents" in err, (target, fmt, err)
    assert tree(tmp_path) == before


def test_user_folder_for_tflite_is_refused_and_intact(model_file, tmp_path, capsys):
    folder = user_folder(tmp_path / "results")
    before = tree(tmp_path)
    for extra in ([], ["--overwrite"]):
        code, err = export(capsys, model_file, "--format", "tflite", "--output", folder, *extra)
        assert code == 2 and "is a folder, but a TFLite file is a file" in err, err
        assert "results/model.tflite" in err  # the fix
    assert tree(tmp_path) == before


def test_user_file_where_a_saved_model_goes_is_refused(model_file, tmp_path, capsys):
    (tmp_path / "served").write_text("my file")
    before = tree(tmp_path)
    for extra in ([], ["--overwrite"]):
        argv = (model_file, "--format", "saved_model", "--output", tmp_path / "served", *extra)
        code, err = export(capsys, *argv)
        assert code == 2 and "is a file, but a SavedModel folder is a folder" in err, err
    assert tree(tmp_path) == before


def test_the_input_model_or_its_folder_as_output_is_refused(model_file, capsys):
    before = tree(model_file.parent)
    for fmt in ("saved_model", "tflite"):
        for target in (model_file, model_file.parent):
            code, err = export(capsys, model_file, "--format", fmt, "--output", target, "--overwrite")
            assert code == 2 and "is (or holds) the input" in err, (fmt, target, err)
    assert tree(model_file.parent) == before
    keras.models.load_model(model_file)


def test_non_outputs_of_the_same_name_are_never_replaced(model_file, previous_saved_model, tmp_path, capsys):
    lookalike = tmp_path / "served"  # a SavedModel folder the user added files to
    shutil.copytree(previous_saved_model, lookalike)
    (lookalike / "train.py").write_text("print('my code')")
    (tmp_path / "m.tflite").write_bytes(b"\x00" * 64)  # not a flatbuffer
    (tmp_path / "m.report.json").write_text('{"mine": true}')  # a user's JSON where the report goes
    (tmp_path / "other.tflite").write_bytes(b"1234TFL3-but-mine")  # a real TFLite id, but a report
    (tmp_path / "other.report.json").write_text("my notes")  # file of the user's where ours goes
    before = tree(tmp_path)
    cases = [
        ("saved_model", lookalike, "not a previous SavedModel folder"),
        ("tflite", tmp_path / "m.tflite", "not a previous TFLite file"),
        ("tflite", tmp_path / "other.tflite", "not a previous export report"),
    ]
    for fmt, target, message in cases:
        code, err = export(capsys, model_file, "--format", fmt, "--output", target, "--overwrite")
        assert code == 2 and message in err and "even with --overwrite" in err, (target, err)
    assert tree(tmp_path) == before


def test_symlinks_are_not_replaced(previous_tflite, model, tmp_path):
    link = tmp_path / "link.tflite"
    link.symlink_to(previous_tflite)
    with pytest.raises(OutputRefusedError, match="symbolic link"):
        convert_to_tflite(model, link, image_size=SIZE, verify=False, overwrite=True)
    assert link.is_symlink() and link.resolve() == previous_tflite.resolve()


# --- a previous output: refused without --overwrite, replaced atomically with it ----------------


@pytest.mark.slow
def test_previous_saved_model_needs_overwrite_then_is_replaced(
    model_file, previous_saved_model, tmp_path, capsys
):
    target = tmp_path / "served"
    shutil.copytree(previous_saved_model, target)
    before = tree(tmp_path)
    argv = (model_file, "--format", "saved_model", "--output", target, "--image-size", SIZE, "--runs", 1)
    code, err = export(capsys, *argv)
    assert code == 2 and "already holds a previous SavedModel folder; pass --overwrite" in err, err
    assert tree(tmp_path) == before

    argv = (*argv, "--overwrite")
    code, err = export(capsys, *argv)
    assert code == 0, err
    signature = tf.saved_model.load(str(target)).signatures["serving_default"]
    assert signature.structured_input_signature[1]["images"].shape.as_list() == [None, SIZE, SIZE, 3]
    assert json.loads((tmp_path / "served.report.json").read_text())["ok"]
    assert partials(tmp_path) == []

    os.rename(target, tmp_path / "moved")
    code, err = export(capsys, *argv[:-1])  # the report left beside is a previous output too
    assert code == 2 and "served.report.json' already holds a previous export report" in err, err


@pytest.mark.slow
def test_python_api_overwrite_false_and_true(model, previous_saved_model, previous_tflite, tmp_path):
    saved, tflite = tmp_path / "served", tmp_path / "m.tflite"
    shutil.copytree(previous_saved_model, saved)
    shutil.copy(previous_tflite, tflite)
    before = tree(tmp_path)
    with pytest.raises(OutputRefusedError, match="overwrite=True"):
        export_saved_model(model, saved)
    with pytest.raises(OutputRefusedError, match="overwrite=True"):
        convert_to_tflite(model, tflite, verify=False)  # refused before any conversion work
    assert tree(tmp_path) == before

    export_saved_model(model, saved, image_size=SIZE, overwrite=True)
    signature = tf.saved_model.load(str(saved)).signatures["serving_default"]
    assert signature.structured_input_signature[1]["images"].shape.as_list() == [None, SIZE, SIZE, 3]
    result = convert_to_tflite(model, tflite, image_size=SIZE, verify=False, overwrite=True)
    assert result.input_shape == [None, SIZE, SIZE, 3] and tflite.read_bytes() != before["m.tflite"]
    assert sorted(os.listdir(tmp_path)) == ["m.tflite", "served"]  # no partials, no scratch


def test_empty_folder_is_used_and_a_refused_write_leaves_no_trace(model, tmp_path):
    (tmp_path / "empty").mkdir()
    export_saved_model(model, tmp_path / "empty", image_size=SIZE)  # an empty folder holds nothing
    assert (tmp_path / "empty" / "saved_model.pb").is_file()
    write_report_json({"path": "x", "input_shape": [1]}, tmp_path / "r.report.json")
    with pytest.raises(OutputRefusedError, match="pass --overwrite"):
        write_report_json({"path": "y", "input_shape": [1]}, tmp_path / "r.report.json")
    assert json.loads((tmp_path / "r.report.json").read_text())["path"] == "x"
    write_report_json({"path": "z", "input_shape": [1]}, tmp_path / "r.report.json", overwrite=True)
    assert json.loads((tmp_path / "r.report.json").read_text())["path"] == "z"
    assert sorted(os.listdir(tmp_path)) == ["empty", "r.report.json"]


def test_atomic_write_keeps_the_previous_file_when_the_writer_fails(model, tmp_path):
    target = tmp_path / "best.keras"
    atomic_write(target, lambda path: model.save(path), KERAS_MODEL)
    before = target.read_bytes()

    def broken(path: Path) -> None:
        path.write_bytes(b"half a zip")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, broken, KERAS_MODEL, overwrite=True)
    assert target.read_bytes() == before and os.listdir(tmp_path) == ["best.keras"]
    atomic_write(target, lambda path: model.save(path), KERAS_MODEL, overwrite=True)
    keras.models.load_model(target)


# --- item 12: a corrupt model file says corrupt, a missing one says not found --------------------


def test_corrupt_and_missing_model_files(model_file, tmp_path, capsys):
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(model_file.read_bytes()[:300])
    (tmp_path / "empty.keras").write_bytes(b"")
    (tmp_path / "text.h5").write_text("not hdf5")
    out = str(tmp_path / "m.tflite")
    for name, message in [
        ("truncated.keras", "is corrupt"),
        ("empty.keras", "is empty (0 bytes)"),
        ("text.h5", "is corrupt"),
        ("missing.keras", "not found"),
    ]:
        code, err = export(capsys, tmp_path / name, "--output", out)
        assert code == 2 and message in err, (name, err)
        assert ("not found" in err) == (name == "missing.keras"), err
    assert not (tmp_path / "m.tflite").exists()


# --- convert ---------------------------------------------------------------------------------------


def convert(capsys, output: Path, config_file: Path, *extra: str) -> tuple[int, str]:
    code = main(["convert", str(CHECKPOINT), "-o", str(output), "--config", str(config_file), *extra])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", ["tiny.keras", "tiny.weights.h5"])
def test_convert_replaces_only_a_previous_output_with_overwrite(name, config_file, tmp_path, capsys):
    output = tmp_path / name
    assert convert(capsys, output, config_file)[0] == 0
    first = output.read_bytes()
    code, err = convert(capsys, output, config_file)
    assert code == 2 and "pass --overwrite" in err, err
    assert output.read_bytes() == first
    assert convert(capsys, output, config_file, "--overwrite")[0] == 0
    assert os.listdir(tmp_path) == [name]
    model = PVT_V2(fixture_config("tiny_sr"), weights=str(output))
    assert model.count_params() > 0

    output.write_bytes(b"someone else's file")
    for extra in ([], ["--overwrite"]):
        code, err = convert(capsys, output, config_file, *extra)
        assert code == 2 and "not a previous" in err and "even with --overwrite" in err, err
    assert output.read_bytes() == b"someone else's file"


def test_convert_refuses_its_input_as_output(config_file, tmp_path, capsys):
    checkpoint = tmp_path / "ckpt.keras"
    PVT_V2(fixture_config("tiny_sr")).save(checkpoint)
    before = checkpoint.read_bytes()
    argv = [str(checkpoint), "-o", str(checkpoint), "--overwrite", "--config", str(config_file)]
    code = main(["convert", *argv])
    assert code == 2 and "is (or holds) the input" in capsys.readouterr().err
    assert checkpoint.read_bytes() == before


# --- the demo writes only into a folder of its own ---------------------------------------------------


def test_demo_uses_only_a_new_empty_or_earlier_demo_folder(tmp_path, monkeypatch, capsys):
    user = user_folder(tmp_path / "mine")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    before = tree(tmp_path)
    for target, message in [
        (user, "files that the demo did not make"),
        (".", "current folder or one of its parents"),
        (tmp_path, "current folder or one of its parents"),
        (user / "notes.txt", "is a file"),
    ]:
        assert main(["demo", "--output", str(target)]) == 2  # refused before any work
        assert message in capsys.readouterr().err, target
    assert tree(tmp_path) == before
    for target in (tmp_path / "new", tmp_path / "empty"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        assert prepare_output(str(target)) == str(target.resolve())
        assert os.listdir(target) == [".keras-pvt-demo"]
        (target / "summary.md").write_text("the demo's")
        assert prepare_output(str(target)) == str(target.resolve())  # a rerun may reuse it
    old = tmp_path / "demo_before_markers"
    old.mkdir()
    (old / "summary.json").write_text(json.dumps({"dataset": "keras_pvt_shapes/64px"}))
    prepare_output(str(old))


# --- stale partials: only ours, only from dead processes ------------------------------------------


def test_clean_stale_removes_only_dead_processes_partials(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead = int(done.stdout)  # a process that has exited (and was reaped)
    alive = os.getppid()
    final = tmp_path / "m.tflite"
    final.write_bytes(b"1234TFL3")
    stale_file = tmp_path / f".m.tflite.partial-{dead}-0123abcd.tflite"
    stale_dir = tmp_path / f".m.tflite.partial-{dead}-89abcdef.saved_model"
    kept = [
        tmp_path / f".m.tflite.partial-{alive}-0123abcd.tflite",  # a running process's
        tmp_path / staging_name("m.tflite", ".tflite"),  # this process's
        tmp_path / f".m.tflite.partial-{dead}-NOTHEX00",  # not exactly our pattern
        tmp_path / f".m.tflite.partial-{dead}",
        tmp_path / f".other.tflite.partial-{dead}-0123abcd",  # another output's
        tmp_path / f"m.tflite.partial-{dead}-0123abcd",  # not hidden: not ours
    ]
    stale_file.write_bytes(b"")
    (stale_dir / "saved_model").mkdir(parents=True)
    for path in kept:
        path.write_bytes(b"keep")
    clean_stale(final)
    assert sorted(os.listdir(tmp_path)) == sorted(["m.tflite", *(p.name for p in kept)])
    assert TFLITE.recognise(final)


# --- SIGKILL in the middle of export / convert over a previous output -----------------------------

KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import keras
    import keras_pvt.export.tflite as tflite
    from keras_pvt.cli import main

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    scenario, final = sys.argv[1], Path(sys.argv[2])
    if scenario == "tflite":  # during the conversion: scratch SavedModel and staging file exist
        tflite._convert = die
    elif scenario == "saved_model":  # between renaming the old folder aside and the new one in
        rename = os.rename
        def rename_then_die(src, dst):
            rename(src, dst)
            if Path(src) == final:
                die()
        os.rename = rename_then_die
    else:  # convert: the new .keras is written, not yet in place
        save = keras.Model.save
        def save_then_die(self, *args, **kwargs):
            save(self, *args, **kwargs)
            die()
        keras.Model.save = save_then_die
    sys.exit(main(sys.argv[3:]))
    """
)


def _killed(scenario: str, final: Path, argv: list[str]) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, scenario, str(final), *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]


def _loads(kind: str, path: Path) -> None:
    if kind == "tflite":
        from ai_edge_litert.interpreter import Interpreter

        Interpreter(model_path=str(path)).allocate_tensors()
    elif kind == "saved_model":
        assert tf.saved_model.load(str(path)).signatures["serving_default"] is not None
    else:
        keras.models.load_model(path)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["tflite", "saved_model", "convert"])
def test_sigkill_keeps_the_previous_output_and_the_next_run_cleans_up(
    scenario, model_file, previous_saved_model, previous_tflite, config_file, tmp_path, capsys
):
    if scenario == "tflite":
        final = tmp_path / "m.tflite"
        shutil.copy(previous_tflite, final)
        argv = ["export", str(model_file), "--format", "tflite", "--image-size", str(SIZE)]
    elif scenario == "saved_model":
        final = tmp_path / "served"
        shutil.copytree(previous_saved_model, final)
        argv = ["export", str(model_file), "--format", "saved_model", "--image-size", str(SIZE)]
        argv += ["--runs", "1"]
    else:
        final = tmp_path / "tiny.keras"
        assert convert(capsys, final, config_file)[0] == 0
        argv = ["convert", str(CHECKPOINT), "--config", str(config_file)]
    before = tree(tmp_path)
    _killed(scenario, final, [*argv, "--output", str(final), "--overwrite"])

    left = partials(tmp_path)
    assert left, "the kill left no staging path behind: the test did not kill mid-write"
    if scenario == "tflite":  # the intermediate SavedModel is beside the output, not in /tmp
        assert any(name.endswith(".saved_model") for name in left), left
    if scenario == "saved_model":  # killed mid-swap: the previous folder is aside, not lost
        assert not final.exists() and any(name.endswith(".old") for name in left)
    else:
        assert {k: v for k, v in tree(tmp_path).items() if ".partial-" not in k} == before
        _loads(scenario, final)

    code = main([*argv, "--output", str(final)])  # the next run, without --overwrite
    assert code == 2 and "pass --overwrite" in capsys.readouterr().err
    assert partials(tmp_path) == [] and tree(tmp_path) == before
    _loads(scenario, final)
