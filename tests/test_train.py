"""`keras_pvt.training.train` and `keras-pvt train`: outputs, learning, resume, recipe, errors."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

import keras_pvt.data  # noqa: F401  (registers keras_pvt_shapes)
from keras_pvt import PVTV2Config
from keras_pvt.schedules import WarmupCosine
from keras_pvt.training import Recipe, train
from keras_pvt.training.outputs import read_history
from keras_pvt.training.recipe import no_decay_variables

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = PVTV2Config(
    embed_dims=(16, 32, 48, 64),
    num_heads=(1, 2, 3, 4),
    depths=(1, 1, 1, 1),
    mlp_ratios=(4, 4, 4, 4),
    num_classes=6,
)
SMALL_DATA = "keras_pvt_shapes/32px_256_64"
LEARN_DATA = "keras_pvt_shapes/64px"  # 3000 train / 600 test
SMALL = TINY.replace(embed_dims=(32, 64, 96, 128))  # the demo's model


def _json(path):
    with open(path) as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds"))
    for name in (SMALL_DATA, LEARN_DATA):
        tfds.builder(name, data_dir=path).download_and_prepare()
    return path


@pytest.fixture(scope="module")
def one_epoch(tfds_dir, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("run"))
    result = train(
        TINY,
        dataset=SMALL_DATA,
        data_dir=tfds_dir,
        output=output,
        image_size=32,
        epochs=1,
        batch_size=32,
        verbose=0,
    )
    return result


@pytest.mark.slow
def test_one_epoch_writes_outputs(one_epoch):
    out = one_epoch.output
    for name in ("best.keras", "history.csv", "training_curves.png", "run.json"):
        assert os.path.isfile(os.path.join(out, name)), name
    assert not os.path.exists(os.path.join(out, "backup"))  # removed once the run finished
    with open(os.path.join(out, "history.csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(rows[0])
    assert one_epoch.epochs_run == 1 and one_epoch.class_names[0] == "circle"
    run = _json(os.path.join(out, "run.json"))
    assert run["peak_lr"] == pytest.approx(5e-4 * 32 / 512)
    loaded = keras.saving.load_model(os.path.join(out, "best.keras"))
    probs = loaded.predict(np.zeros((2, 48, 48, 3), "float32"), verbose=0)
    assert probs.shape == (2, 6) and np.allclose(probs.sum(-1), 1, atol=1e-4)


@pytest.mark.slow
def test_learns_the_embedded_task_above_chance(tfds_dir, tmp_path):
    """5 epochs (~470 steps of 32) at 64 px: measured 0.44 validation accuracy; chance is 1/6."""
    result = train(
        SMALL,
        dataset=LEARN_DATA,
        data_dir=tfds_dir,
        output=str(tmp_path),
        image_size=64,
        epochs=5,
        batch_size=32,
        cache=True,
        crop_scale=(0.8, 1.0),
        recipe=Recipe(base_lr=1.6e-2, warmup_epochs=1),
        verbose=0,
    )
    assert result.best_val_accuracy > 0.3, result.history


@pytest.mark.slow
def test_resume_after_kill_continues_from_saved_epoch(tfds_dir, tmp_path):
    """A run killed (os._exit, no cleanup) after finishing epoch 2 resumes at epoch 3."""
    output = str(tmp_path / "run")
    script = textwrap.dedent(f"""
        import os, keras
        from keras_pvt import PVTV2Config
        from keras_pvt.training import train
        class Kill(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    os._exit(17)
        train(PVTV2Config(**{TINY.to_dict()!r}), dataset={SMALL_DATA!r}, data_dir={tfds_dir!r},
              output={output!r}, image_size=32, epochs=4, batch_size=32, steps_per_epoch=2,
              callbacks=[Kill()], verbose=0)
    """)
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    killed = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert killed.returncode == 17, killed.stderr[-3000:]
    assert len(read_history(os.path.join(output, "history.csv"))["epoch"]) == 2
    backup = _json(os.path.join(output, "backup", "state.json"))
    assert backup["epochs_done"] == 2

    seen = []
    record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(epoch))
    result = train(
        TINY,
        dataset=SMALL_DATA,
        data_dir=tfds_dir,
        output=output,
        image_size=32,
        epochs=4,
        batch_size=32,
        steps_per_epoch=2,
        callbacks=[record],
        verbose=0,
    )
    assert seen == [2, 3]  # no finished epoch is repeated
    assert result.history["epoch"] == [0, 1, 2, 3]
    assert result.model.optimizer.iterations.numpy() == 8  # optimizer state restored too
    assert not os.path.exists(os.path.join(output, "backup"))


@pytest.mark.slow
def test_fine_tune_from_keras_file_and_mixed_precision(one_epoch, tfds_dir, tmp_path):
    source = keras.saving.load_model(one_epoch.best_model_path)
    result = train(
        TINY,
        dataset=SMALL_DATA,
        data_dir=tfds_dir,
        output=str(tmp_path),
        weights=one_epoch.best_model_path,
        image_size=32,
        epochs=1,
        batch_size=32,
        steps_per_epoch=1,
        precision="mixed_bfloat16",
        recipe=Recipe(base_lr=1e-12, min_lr=0.0, warmup_lr=0.0, weight_decay=0.0),
        verbose=0,
    )
    assert keras.mixed_precision.dtype_policy().name == "float32"  # restored afterwards
    assert result.model.get_layer("stage1").compute_dtype == "bfloat16"
    # lr ~0 (0 is refused): the copied weights are unchanged by the step
    np.testing.assert_allclose(
        result.model.get_layer("stage2").get_weights()[0],
        source.get_layer("stage2").get_weights()[0],
    )


def test_recipe_weight_decay_exclusion_and_schedule():
    model = keras_pvt_model()
    excluded = {v.path for v in no_decay_variables(model)}
    assert any("norm" in p and "gamma" in p for p in excluded)
    assert any(p.endswith("bias") for p in excluded)
    assert not any(p.endswith("kernel") for p in excluded)
    optimizer = Recipe().optimizer(model, batch_size=1024, steps_per_epoch=10, epochs=20)
    optimizer.build(model.trainable_variables)
    decayed = [v for v in model.trainable_variables if optimizer._use_weight_decay(v)]
    assert decayed and all(len(v.shape) >= 2 for v in decayed)
    schedule = optimizer._learning_rate
    assert isinstance(schedule, WarmupCosine)
    assert schedule.peak_lr == pytest.approx(1e-3)  # 5e-4 * 1024 / 512
    assert float(schedule(0)) == pytest.approx(1e-6)
    assert float(schedule(25)) == pytest.approx(0.5e-3, rel=0.01)  # half-way through warmup
    assert float(schedule(50)) == pytest.approx(1e-3)
    assert float(schedule(200)) == pytest.approx(1e-5)
    middle = 1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * 0.5))
    assert float(schedule(125)) == pytest.approx(middle, rel=1e-4)
    assert WarmupCosine.from_config(schedule.get_config()).get_config() == schedule.get_config()


def keras_pvt_model():
    from keras_pvt import PVT_V2

    return PVT_V2(TINY)


def test_clear_errors(tfds_dir, tmp_path):
    with pytest.raises(ValueError, match="too small"):
        train(TINY, dataset=SMALL_DATA, data_dir=tfds_dir, output=str(tmp_path), image_size=8)
    with pytest.raises(ValueError, match="precision"):
        train(TINY, dataset=SMALL_DATA, output=str(tmp_path), precision="float8")
    with pytest.raises(ValueError, match="larger than the"):
        train(
            TINY, dataset=SMALL_DATA, data_dir=tfds_dir, output=str(tmp_path), image_size=32, batch_size=4096
        )
    with pytest.raises(ValueError, match="Unknown strategy"):
        train(TINY, dataset=SMALL_DATA, output=str(tmp_path), strategy="horovod")


@pytest.mark.slow
def test_cli_train_runs_and_matches_library_constants(tfds_dir, tmp_path, capsys):
    from keras_pvt.cli import build_parser, main
    from keras_pvt.cli import train as cli_train
    from keras_pvt.training import PRECISIONS, STRATEGIES

    assert cli_train.STRATEGIES == STRATEGIES and cli_train.PRECISIONS == PRECISIONS
    args = build_parser().parse_args(["train", "--strategy", "mirrored", "--no-resume"])
    assert args.strategy == "mirrored" and args.resume is False and args.variant == "b0"
    code = main(
        [
            "train",
            "--variant",
            "b0",
            "--dataset",
            SMALL_DATA,
            "--data-dir",
            tfds_dir,
            "--image-size",
            "32",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--steps-per-epoch",
            "1",
            "--output",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert "best validation accuracy" in capsys.readouterr().out
    run = _json(tmp_path / "run.json")
    assert run["variant"] == "b0" and run["config"]["drop_path_rate"] == 0.1
    assert main(["train", "--dataset", str(tmp_path / "missing"), "--output", str(tmp_path)]) == 2
