"""Bad-input matrix, training: a run never loses finished work (atomic files, kills at each step of
an epoch's end, finished runs kept), bad arguments are refused before any work, a diverged run fails,
trained `.keras` files load after `import keras_pvt`, and a truncated image is named before training."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import keras_pvt.training
from keras_pvt import data  # registers the keras_pvt_shapes builder
from keras_pvt.cli import main
from keras_pvt.limits import integer
from keras_pvt.training import Recipe, TrainingDivergedError, train
from keras_pvt.training.callbacks import TimeBudget
from keras_pvt.training.outputs import read_history

from helpers import tiny_config

ROOT = Path(__file__).resolve().parents[1]
DATA = "keras_pvt_shapes/32px_64_16"  # 64 training and 16 test images of 32 px
TINY = tiny_config(num_classes=6)
FAST = {"image_size": 32, "batch_size": 16, "steps_per_epoch": 1, "verbose": 0}
CLI_FAST = ["--image-size", "32", "--batch-size", "16", "--steps-per-epoch", "1"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds"))
    tfds.builder(DATA, data_dir=path).download_and_prepare()
    return path


def _train(output, tfds_dir, **changes):
    return train(TINY, dataset=DATA, data_dir=tfds_dir, output=str(output), **{**FAST, **changes})


def _cli(output, tfds_dir, *extra):
    base = ["train", "--variant", "b0", "--dataset", DATA, "--data-dir", tfds_dir, "--output"]
    return main([*base, str(output), *CLI_FAST, *extra])


@pytest.fixture(scope="module")
def finished_run(tfds_dir, tmp_path_factory):
    output = tmp_path_factory.mktemp("finished") / "run"
    _train(output, tfds_dir, epochs=1)
    return output


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _json(path):
    return json.loads(Path(path).read_text())


# --- item 4: bad arguments are refused before any work ------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "epochs must be a positive integer, got 0"),
        ({"epochs": -3}, "epochs must be a positive integer, got -3"),
        ({"epochs": 2.5}, "epochs must be a positive integer, got 2.5"),
        ({"epochs": True}, "epochs must be a positive integer, got True"),
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"image_size": -32}, "image_size must be a positive integer, got -32"),
        (
            {"steps_per_epoch": -1},
            r"steps_per_epoch \(None: one pass over the data\) must be a positive integer",
        ),
        ({"steps_per_epoch": 0}, "steps_per_epoch .* got 0"),
        ({"drop_path_rate": 1.5}, r"drop_path_rate \(--drop-path\) must be a finite number in \[0, 1\)"),
        ({"crop_scale": (0.0, 1.0)}, r"crop_scale min must be a finite number in \(0, 1\], got 0.0"),
        ({"crop_scale": (0.9, 0.5)}, r"crop_scale max must be a finite number in \[0.9, 1\], got 0.5"),
        ({"seed": -1}, "seed must be an integer in"),
    ],
)
def test_bad_train_arguments_are_refused_before_any_work(tmp_path, changes, message):
    output = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        train(TINY, dataset=DATA, output=str(output), **{**FAST, **changes})
    assert not output.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"base_lr": math.nan}, r"base_lr \(--lr\) must be a positive number \(finite\), got nan"),
        ({"base_lr": 0.0}, r"base_lr \(--lr\) must be a positive number \(finite\), got 0.0"),
        ({"base_lr": -1e-3}, r"base_lr \(--lr\) must be a positive number \(finite\), got -0.001"),
        ({"base_lr": math.inf}, r"base_lr \(--lr\) .* got inf"),
        ({"min_lr": -1.0}, "min_lr must be a finite number >= 0, got -1.0"),
        ({"warmup_epochs": math.nan}, "warmup_epochs must be a finite number >= 0, got nan"),
        ({"weight_decay": -0.05}, "weight_decay must be a finite number >= 0"),
        ({"label_smoothing": 1.0}, r"label_smoothing must be a finite number in \[0, 1\), got 1.0"),
        ({"clip_norm": 0.0}, r"clip_norm must be a positive number \(finite\), got 0.0"),
        ({"base_lr": "5e-4"}, "base_lr .* got '5e-4'"),
    ],
)
def test_bad_recipe_values_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        Recipe(**changes)


def test_bad_time_budget_and_accepted_integer_types():
    for seconds in (0, -5, math.nan):
        with pytest.raises(ValueError, match=r"time budget .* must be a positive number \(finite\)"):
            TimeBudget(seconds)
    assert integer("epochs", np.int64(3)) == 3  # numpy integers are integers


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lr", "nan"], r"base_lr \(--lr\) must be a positive number \(finite\), got nan"),
        (["--lr", "0"], r"base_lr \(--lr\) must be a positive number \(finite\), got 0.0"),
        (["--steps-per-epoch", "-1"], "steps_per_epoch .* must be a positive integer, got -1"),
        (["--epochs", "0"], "epochs must be a positive integer, got 0"),
        (["--batch-size", "-4"], "batch_size must be a positive integer, got -4"),
        (["--image-size", "0"], "image_size must be a positive integer, got 0"),
        (["--warmup-epochs", "-1"], "warmup_epochs must be a finite number >= 0, got -1.0"),
    ],
)
def test_cli_refuses_bad_arguments_with_exit_2(tmp_path, capsys, flags, message):
    output = tmp_path / "run"
    assert main(["train", "--output", str(output), *flags]) == 2
    error = capsys.readouterr().err
    assert error.startswith("keras-pvt train: error: ")
    assert re.search(message, error), error
    assert not output.exists()


# --- item 2 (b): a finished run is left untouched unless asked ----------------------------------


@pytest.mark.slow
def test_finished_run_is_left_untouched_without_overwrite(finished_run, tfds_dir, tmp_path, capsys):
    output = tmp_path / "run"
    shutil.copytree(finished_run, output)
    before = _snapshot(output)
    assert {"best.keras", "history.csv", "run.json", "training_curves.png"} <= set(before)
    assert _json(output / "run.json")["status"] == "finished"
    for resume in (True, False):
        with pytest.raises(ValueError, match=r"holds a finished training run.*--overwrite"):
            _train(output, tfds_dir, epochs=1, resume=resume)
    assert _cli(output, tfds_dir, "--epochs", "1") == 2
    error = capsys.readouterr().err
    assert "holds a finished training run" in error and "--overwrite" in error
    assert _snapshot(output) == before  # byte for byte


@pytest.mark.slow
def test_overwrite_trains_again_and_keeps_the_users_files(finished_run, tfds_dir, tmp_path):
    output = tmp_path / "run"
    shutil.copytree(finished_run, output)
    (output / "notes.txt").write_text("mine")
    (output / "backup").mkdir()
    (output / "backup" / "keep.txt").write_text("also mine")
    previous = (output / "history.csv").read_bytes()
    result = _train(output, tfds_dir, epochs=2, overwrite=True)
    assert result.epochs_run == 2 and read_history(str(output / "history.csv"))["epoch"] == [0, 1]
    assert (output / "history.csv").read_bytes() != previous
    assert _json(output / "run.json")["status"] == "finished"
    assert (output / "notes.txt").read_text() == "mine"
    assert sorted(os.listdir(output / "backup")) == ["keep.txt"]  # only our files were removed
    assert not [p for p in os.listdir(output) if ".partial-" in p]


def test_outputs_of_a_run_without_status_are_kept_and_a_file_is_refused(tmp_path):
    """An earlier keras-pvt wrote no status: its history.csv / best.keras count as a finished run."""
    (tmp_path / "history.csv").write_text("epoch,loss\n0,1.5\n")
    with pytest.raises(ValueError, match=r"holds a finished training run \(history\.csv\)"):
        train(TINY, dataset=DATA, output=str(tmp_path), **FAST)
    assert (tmp_path / "history.csv").read_text() == "epoch,loss\n0,1.5\n"
    (tmp_path / "model").write_text("not a folder")
    with pytest.raises(ValueError, match="is a file; a training run needs a folder"):
        train(TINY, dataset=DATA, output=str(tmp_path / "model"), **FAST)


# --- item 2 (a): a corrupt best.keras on resume ------------------------------------------------


class _CrashError(Exception):
    pass


class _Interrupt(keras.callbacks.Callback):
    """Raise after epoch `at` (0-based) finished: the run stops unfinished, as after a crash."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            raise _CrashError


def _widened(keras_file: bytes, dim: int) -> bytes:
    """`keras_file` with its first PVT stage's width set to `dim` in config.json."""
    import io
    import zipfile

    source, out = zipfile.ZipFile(io.BytesIO(keras_file)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "config.json":
                text = data.decode()
                data = re.sub(r'"dim": \d+', f'"dim": {dim}', text, count=1).encode()
                assert data.decode() != text
            target.writestr(name, data)
    return out.getvalue()


@pytest.mark.slow
def test_damaged_resume_files_are_reported_not_replaced(tfds_dir, tmp_path):
    output = tmp_path / "run"
    with pytest.raises(_CrashError):
        _train(output, tfds_dir, epochs=3, callbacks=[_Interrupt(1)])
    state = output / "backup" / "state.json"
    assert _json(state)["epochs_done"] == 2
    good_state = state.read_bytes()
    state.write_text("{not json")
    with pytest.raises(ValueError, match=r"state\.json is unreadable .*--no-resume"):
        _train(output, tfds_dir, epochs=3)
    state.write_bytes(good_state)
    best = (output / "best.keras").read_bytes()
    (output / "best.keras").write_bytes(b"")  # what a kill during an in-place write left
    with pytest.raises(ValueError, match=r"best\.keras is corrupt \(not a \.keras zip.*Move it aside"):
        _train(output, tfds_dir, epochs=3)
    assert (output / "best.keras").read_bytes() == b""  # reported, not replaced
    (output / "best.keras").write_bytes(_widened(best, 10**7))  # a file asking for too many weights
    with pytest.raises(ValueError, match=r"best\.keras is corrupt \(its model is beyond keras-pvt's sanity"):
        _train(output, tfds_dir, epochs=3)
    os.remove(output / "best.keras")  # what the message says to do
    with warnings.catch_warnings():  # best.keras cannot be rebuilt when epoch 1 was the best
        warnings.simplefilter("ignore", UserWarning)
        result = _train(output, tfds_dir, epochs=3)
    assert result.history["epoch"] == [0, 1, 2]
    assert keras.saving.load_model(output / "best.keras").count_params() > 0


# --- item 4: a diverged run fails and keeps the finite epochs ------------------------------------


@pytest.mark.slow
def test_diverged_run_raises_and_keeps_no_nan_model(tfds_dir, tmp_path):
    """lr 1e30: epoch 1 (warmup lr) and the first peak step are finite, the next loss is not."""
    output = tmp_path / "run"
    recipe = Recipe(base_lr=1e30, warmup_epochs=1)
    with pytest.raises(TrainingDivergedError, match=r"the loss is (nan|inf) at epoch 3, batch 1"):
        _train(output, tfds_dir, epochs=3, recipe=recipe)
    history = read_history(str(output / "history.csv"))
    assert history["epoch"] == [0, 1] and all(math.isfinite(v) for v in history["loss"])
    assert _json(output / "backup" / "state.json")["epochs_done"] == 2  # resumable from there
    assert _json(output / "run.json")["status"] == "running"
    best = keras.saving.load_model(output / "best.keras")
    assert all(np.isfinite(w).all() for w in best.get_weights())


def test_cli_exits_3_when_training_diverges(tmp_path, capsys, monkeypatch):
    def diverging(*args, **kwargs):
        raise TrainingDivergedError("Training diverged: the loss is nan at epoch 3, batch 1.")

    monkeypatch.setattr(keras_pvt.training, "train", diverging)
    assert main(["train", "--output", str(tmp_path / "run")]) == 3
    assert (
        capsys.readouterr().err
        == "keras-pvt train: error: Training diverged: the loss is nan at epoch 3, batch 1.\n"
    )


# --- item 10: a trained .keras loads after a plain `import keras_pvt` ----------------------------

LOAD_SCRIPT = """
import json, sys, keras
try:
    keras.saving.load_model(sys.argv[1])
    print("LOADED WITHOUT keras_pvt")
except Exception as error:
    print("WITHOUT:", json.dumps(str(error)[:2000]))
import keras_pvt
model = keras.saving.load_model(sys.argv[1], safe_mode=True)
names = sorted(k for k in keras.saving.get_custom_objects() if k.startswith("keras_pvt>"))
print("REGISTERED:", json.dumps(names))
print("SCHEDULE:", type(model.optimizer._learning_rate).__name__)
"""


def _registered_by_the_whole_package() -> set[str]:
    import importlib
    import pkgutil

    import keras_pvt

    for module in pkgutil.walk_packages(keras_pvt.__path__, "keras_pvt."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    return {k for k in keras.saving.get_custom_objects() if k.startswith("keras_pvt>")}


@pytest.mark.slow
def test_trained_model_loads_after_plain_import(finished_run):
    done = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(finished_run / "best.keras")],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    # Keras 3 cannot be told to import a package; its message names our class and module.
    without = json.loads(lines["WITHOUT"])
    assert "Could not locate class" in without and "'module': 'keras_pvt." in without, without
    assert "keras_pvt>" in without  # the registered name, e.g. keras_pvt>PVTStage
    assert lines["SCHEDULE"] == "WarmupCosine"
    assert set(json.loads(lines["REGISTERED"])) == _registered_by_the_whole_package()


# --- item 12: a truncated image is named before training -----------------------------------------


def _image_folder(root: Path) -> None:
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (root / "train" / label).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 255, (36, 40, 3), dtype=np.uint8)
            (root / "train" / label / f"{i}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    jpeg = tf.io.encode_jpeg(rng.integers(0, 255, (36, 40, 3), dtype=np.uint8)).numpy()
    (root / "train" / "cat" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "train" / "dog" / "trailing.jpg").write_bytes(jpeg + b"appended data")  # decodes


def test_truncated_jpeg_is_named_before_training(tmp_path, capsys):
    _image_folder(tmp_path / "images")
    with pytest.raises(
        ValueError, match=r"(?s)1 file\(s\) .*truncated\.jpg \(truncated or corrupt\)"
    ) as error:
        data.make_pipelines(str(tmp_path / "images"), image_size=32, batch_size=2)
    assert "trailing.jpg" not in str(error.value)
    flags = ["--dataset", str(tmp_path / "images"), "--output", str(tmp_path / "run"), "--epochs", "1"]
    assert main(["train", *flags, *CLI_FAST]) == 2
    assert "truncated.jpg (truncated or corrupt)" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before training: no run folder


def _segmentation_folder(root: Path) -> None:
    """Eight 24 x 32 image/mask pairs of labels 0..2, three classes named in classes.txt."""
    rng = np.random.default_rng(0)
    for kind in ("images", "masks"):
        (root / kind).mkdir(parents=True)
    for i in range(8):
        pixels = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
        (root / "images" / f"{i}.png").write_bytes(tf.io.encode_png(pixels).numpy())
        labels = rng.integers(0, 3, (24, 32, 1), dtype=np.uint8)
        (root / "masks" / f"{i}.png").write_bytes(tf.io.encode_png(labels).numpy())
    (root / "classes.txt").write_text("sky\nroad\ncar\n")


def _break_truncated_mask(root: Path) -> str:
    mask = root / "masks" / "3.png"
    mask.write_bytes(mask.read_bytes()[:60])
    return r"(?s)masks/3\.png \(truncated or corrupt\)"


def _break_unreadable_image(root: Path) -> str:
    (root / "images" / "5.png").write_bytes(b"<html>not found</html>")
    return r"(?s)images/5\.png \(not a JPEG or PNG\)"


def _break_label_beyond_the_classes(root: Path) -> str:
    (root / "masks" / "6.png").write_bytes(tf.io.encode_png(np.full((24, 32, 1), 3, np.uint8)).numpy())
    return r"1 mask\(s\) hold labels >= 3, .*classes\.txt.*masks/6\.png \(label 3\)"


@pytest.mark.parametrize(
    "damage", [_break_truncated_mask, _break_unreadable_image, _break_label_beyond_the_classes]
)
@pytest.mark.parametrize("output_was", ["absent", "an empty folder"])
def test_bad_segmentation_folder_is_named_before_training(tmp_path, capsys, damage, output_was):
    _segmentation_folder(tmp_path / "pairs")
    message = damage(tmp_path / "pairs")
    output = tmp_path / "run"
    if output_was == "an empty folder":
        output.mkdir()
    flags = ["--task", "segmentation", "--dataset", str(tmp_path / "pairs"), "--output", str(output)]
    assert main(["train", *flags, "--image-size", "32", "--batch-size", "2"]) == 2  # refused input
    assert re.search(message, capsys.readouterr().err)
    assert not output.exists() if output_was == "absent" else not any(output.iterdir())


# --- item 2 (a, c): SIGKILL at each step of an epoch's end ---------------------------------------

KILL_SCRIPT = """
import json, os, signal, sys, keras
from keras_pvt import PVTV2Config
from keras_pvt.training import callbacks, train

run = json.loads(sys.argv[1])
point, at, epoch = run.pop("point"), run.pop("at"), None


def kill():
    os.kill(os.getpid(), signal.SIGKILL)


def truncating(save):  # writes the file, cuts it in half, dies: a kill in the middle of the write
    def wrapped(self, path, *args, **kwargs):
        save(self, path, *args, **kwargs)
        if epoch == at:
            os.truncate(path, os.path.getsize(path) // 2)
            kill()
    return wrapped


if point == "best.keras":
    keras.Model.save = truncating(keras.Model.save)
if point == "backup weights":
    keras.Model.save_weights = truncating(keras.Model.save_weights)
if point == "history.csv":  # between the backup (committed) and the history row
    write_history = callbacks.write_history
    callbacks.write_history = lambda *args: kill() if epoch == at else write_history(*args)

end_epoch = callbacks.EpochCheckpoint.on_epoch_end
def every_epoch_best(self, number, logs=None):  # so that each epoch writes best.keras
    logs["val_accuracy"] = float(number)
    end_epoch(self, number, logs)
callbacks.EpochCheckpoint.on_epoch_end = every_epoch_best

class Track(keras.callbacks.Callback):
    def on_epoch_begin(self, number, logs=None):
        global epoch
        epoch = number

config = PVTV2Config.from_dict(run.pop("config"))
train(config, epochs=5, callbacks=[Track()], **run)
"""


def _killed_at(point: str, epoch: int, output: Path, tfds_dir: str) -> None:
    run = {"point": point, "at": epoch, "config": TINY.to_dict(), "dataset": DATA, **FAST}
    run.update(output=str(output), data_dir=tfds_dir)
    done = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, json.dumps(run)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]


class _StepsAtEpochBegin(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int]] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append((epoch, int(self.model.optimizer.iterations.numpy())))


def _epochs_logged(output: Path) -> list[float]:
    return read_history(str(output / "history.csv"))["epoch"]


@pytest.mark.slow
def test_sigkill_at_each_step_of_an_epoch_end_loses_nothing(tfds_dir, tmp_path):
    """One run of 5 epochs killed three times, each kill resumed by the next process."""
    output, saved = tmp_path / "run", tmp_path / "best_before_kill.keras"

    _killed_at("best.keras", 1, output, tfds_dir)  # epoch 1 finished; its best.keras half written
    assert _epochs_logged(output) == [0, 1]
    assert _json(output / "backup" / "state.json")["epochs_done"] == 2
    shutil.copy(output / "best.keras", saved)  # epoch 0's, intact
    assert keras.saving.load_model(saved).count_params() > 0
    assert [p for p in os.listdir(output) if p.startswith(".best.keras.partial-")]  # the cut file

    _killed_at("history.csv", 2, output, tfds_dir)  # epoch 2 committed, not yet logged
    assert _epochs_logged(output) == [0, 1]
    assert _json(output / "backup" / "state.json")["epochs_done"] == 3
    assert (output / "best.keras").read_bytes() != saved.read_bytes()  # rebuilt for epoch 1
    assert not [p for p in os.listdir(output) if ".partial-" in p]

    _killed_at("backup weights", 3, output, tfds_dir)  # epoch 3's backup half written
    assert _epochs_logged(output) == [0, 1, 2]  # epoch 2 logged on resume, once
    assert _json(output / "backup" / "state.json")["epochs_done"] == 3

    steps = _StepsAtEpochBegin()
    result = _train(output, tfds_dir, epochs=5, callbacks=[steps])
    assert steps.seen == [(3, 3), (4, 4)]  # epoch 3 restarted from the state after epoch 2
    assert _epochs_logged(output) == [0, 1, 2, 3, 4]
    assert result.model.optimizer.iterations.numpy() == 3  # the best: epoch 2, rebuilt after a kill
    assert _json(output / "run.json")["status"] == "finished"
    assert not (output / "backup").exists()
    keras.saving.load_model(output / "best.keras")
