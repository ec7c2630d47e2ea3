"""`train_detection` and `keras-pvt train --task detection`: the run folder (history with the COCO
columns, best.keras and final.keras detectors that load in safe mode), resume after an interruption
through the CLI, a finished run left untouched, the loss falling on a fixed subset, the 1x recipe
and its step schedule, the CLI mapping and the refusals before any work."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import sys

import keras
import numpy as np
import pytest
from keras import ops

from keras_pvt.detection.coco_eval import METRIC_NAMES
from keras_pvt.schedules import StepDecay

from helpers import tiny_config

pytest.importorskip("pycocotools")

SMALL_DATA = "keras_pvt_det_shapes/64px_16_8"  # 16 train / 8 test images, 6 classes
TINY = tiny_config()
HEAD = {"fpn_channels": 16, "head_channels": 16, "stacked_convs": 1}
FAST = {"image_size": 64, "batch_size": 4, "verbose": 0, **HEAD}
COCO_COLUMNS = {f"val_{name}" for name in METRIC_NAMES}


def _json(path):
    with open(path) as handle:
        return json.load(handle)


def _snapshot(folder):
    return {
        os.path.relpath(os.path.join(root, name), folder): open(os.path.join(root, name), "rb").read()
        for root, _, names in os.walk(folder)
        for name in names
    }


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    import tensorflow_datasets as tfds

    import keras_pvt.data  # noqa: F401  (registers the builders)

    path = str(tmp_path_factory.mktemp("tfds"))
    tfds.builder(SMALL_DATA, data_dir=path).download_and_prepare()
    return path


class _InterruptedError(Exception):
    pass


class _InterruptAfterFirstEpoch(keras.callbacks.Callback):
    """Stops the run like a kill after epoch 1 finished (its checkpoint callback ran first)."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise _InterruptedError


class _RecordSteps(keras.callbacks.Callback):
    """The optimizer's step count at the start of each epoch the fit runs."""

    def __init__(self):
        super().__init__()
        self.seen = {}

    def on_epoch_begin(self, epoch, logs=None):
        self.seen[epoch] = int(ops.convert_to_numpy(self.model.optimizer.iterations))


@pytest.fixture(scope="module")
def resumed_run(tfds_dir, tmp_path_factory):
    """A 4-epoch run on the same 16 images each epoch (no flip), COCO-evaluated every third epoch
    and at the last, interrupted after epoch 1, then resumed through ``keras-pvt train --task
    detection`` with the same settings (the real CLI path; only the backbone is shrunk): (what the
    interrupted run left, the optimizer steps seen at each epoch the CLI ran, its result, its
    printed output)."""
    from keras_pvt import training
    from keras_pvt.cli import main

    output = str(tmp_path_factory.mktemp("det_run"))
    with pytest.raises(_InterruptedError):
        training.train_detection(
            TINY,
            callbacks=[_InterruptAfterFirstEpoch()],
            dataset=SMALL_DATA,
            data_dir=tfds_dir,
            output=output,
            epochs=4,
            augment=False,
            eval_every=3,
            recipe=training.DetectionRecipe(base_lr=4e-3, warmup_steps=1),
            **FAST,
        )
    left = {
        "history": training.outputs.read_history(os.path.join(output, "history.csv")),
        "state": _json(os.path.join(output, "backup", "state.json")),
        "status": _json(os.path.join(output, "run.json"))["status"],
        "files": set(os.listdir(output)),
    }
    record, results = _RecordSteps(), []
    real = training.train_detection

    def shrunk(variant, **options):
        assert variant == "b0"
        results.append(real(TINY, callbacks=[record], **options))
        return results[-1]

    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()) as printed:
        patch.setattr(training, "train_detection", shrunk)
        code = main(
            [
                "train",
                "--task",
                "detection",
                *("--dataset", SMALL_DATA, "--data-dir", tfds_dir, "--image-size", "64", "--no-augment"),
                *("--batch-size", "4", "--epochs", "4", "--eval-every", "3", "--lr", "4e-3"),
                *("--warmup-steps", "1", "--fpn-channels", "16", "--head-channels", "16"),
                *("--stacked-convs", "1", "--output", output),
            ]
        )
    assert code == 0
    return left, record.seen, results[0], printed.getvalue()


@pytest.mark.slow
def test_interrupted_run_resumes_from_its_last_finished_epoch(resumed_run):
    left, seen, result, _ = resumed_run
    assert left["status"] == "running" and left["state"]["epochs_done"] == 1
    assert left["history"]["epoch"] == [0] and "final.keras" not in left["files"]
    assert "best.keras" not in left["files"]  # epoch 1 was not evaluated: no best yet
    assert seen == {1: 4, 2: 8, 3: 12}  # epochs 2-4 ran, from the optimizer state of epoch 1
    assert result.history["epoch"] == [0, 1, 2, 3] and result.epochs_run == 4
    assert not os.path.exists(os.path.join(result.output, "backup"))


@pytest.mark.slow
def test_training_lowers_the_loss_on_a_fixed_subset(resumed_run):
    """Every epoch is one pass over the same 16 images, unflipped: if the step did not train (no
    gradient, a zero learning rate, a loss cut off from the weights), the epoch's mean loss would
    stay where it started (up to stochastic depth). Measured with seeds 0 and 1: the fourth
    epoch's is about two thirds of the first's."""
    *_, result, _ = resumed_run
    loss = result.history["loss"]
    assert all(math.isfinite(v) for v in loss)
    assert loss[-1] < 0.85 * loss[0], loss
    assert {"cls_logits_loss", "box_deltas_loss"} <= set(result.history)  # mmdet's loss_cls, loss_bbox


@pytest.mark.slow
def test_run_folder_history_and_run_json(resumed_run):
    *_, result, printed = resumed_run
    out = result.output
    for name in ("best.keras", "final.keras", "history.csv", "training_curves.png", "run.json"):
        assert os.path.isfile(os.path.join(out, name)), name
    assert "best validation COCO AP" in printed and "final.keras" in printed
    assert {"loss", *COCO_COLUMNS} <= set(result.history)
    # evaluated every third epoch and at the last; NaN between, never the best
    assert [math.isnan(v) for v in result.history["val_ap"]] == [True, True, False, False]
    evaluated = result.history["val_ap"][2:] + result.history["val_ap50"][2:]
    assert all(0.0 <= v <= 1.0 for v in evaluated)
    run = _json(os.path.join(out, "run.json"))
    assert run["task"] == "detection" and run["status"] == "finished" and run["eval_every"] == 3
    assert run["peak_lr"] == pytest.approx(4e-3 * 4 / 16)
    assert run["recipe"]["warmup_steps"] == 1 and run["recipe"]["decay_epochs"] == [8, 11]
    assert run["detector"] == {"backbone_weights": None, **HEAD}
    assert run["image_size"] == [64, 64] and len(run["class_names"]) == 6
    assert run["best_val_ap"] == pytest.approx(max(result.history["val_ap"][2:]))
    assert run["best_epoch"] in (3, 4)
    assert set(run["best_coco"]) == set(METRIC_NAMES) == set(result.best_metrics)
    assert run["best_coco"]["ap"] == pytest.approx(result.best_val_ap)
    assert result.final_model_path == os.path.join(out, "final.keras")


@pytest.mark.slow
def test_best_and_final_models_load_in_safe_mode_and_detect(resumed_run):
    *_, result, _ = resumed_run
    images = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")
    expected = result.model.predict(images, verbose=0)
    for name in ("best.keras", "final.keras"):
        loaded = keras.models.load_model(os.path.join(result.output, name), safe_mode=True)
        detections = loaded.predict(images, verbose=0)
        assert set(detections) == {"boxes", "confidence", "labels", "num_detections"}, name
        assert detections["boxes"].shape == (2, 100, 4) and detections["num_detections"].shape == (2,)
        if name == "best.keras":  # the result's model is best.keras
            np.testing.assert_allclose(detections["confidence"], expected["confidence"], atol=1e-6)


@pytest.mark.slow
def test_finished_run_is_left_untouched_without_overwrite(resumed_run, tfds_dir, tmp_path, capsys):
    from keras_pvt.cli import main
    from keras_pvt.training import train_detection

    output = tmp_path / "run"
    shutil.copytree(resumed_run[2].output, output)
    before = _snapshot(output)
    with pytest.raises(ValueError, match=r"holds a finished training run.*--overwrite"):
        train_detection(TINY, dataset=SMALL_DATA, data_dir=tfds_dir, output=str(output), epochs=1, **FAST)
    flags = ["--dataset", SMALL_DATA, "--data-dir", tfds_dir, "--output", str(output), "--epochs", "1"]
    assert main(["train", "--task", "detection", *flags]) == 2
    error = capsys.readouterr().err
    assert "holds a finished training run" in error and "final.keras" in error
    assert _snapshot(output) == before  # byte for byte


def test_recipe_is_the_official_1x_schedule():
    """``retinanet_pvt_v2_b*_fpn_1x_coco.py`` on mmdet's ``schedule_1x.py``: AdamW lr 1e-4 per 16
    images, weight decay 1e-4 on every weight, no clipping; mmcv's linear warmup over 500 steps
    from 0.001 x, then x0.1 from the first step of epochs 9 and 12 (1-based) of 12."""
    from keras_pvt.training import DetectionRecipe

    recipe = DetectionRecipe()
    assert (recipe.base_lr, recipe.reference_batch, recipe.weight_decay) == (1e-4, 16, 1e-4)
    assert (recipe.warmup_steps, recipe.warmup_ratio, recipe.decay_epochs) == (500, 1e-3, (8, 11))
    assert recipe.clip_norm is None and recipe.schedule_epochs == 12
    steps = 100  # per epoch
    schedule = recipe.schedule(batch_size=16, steps_per_epoch=steps, epochs=12)
    assert isinstance(schedule, StepDecay) and schedule.decay_steps == [800, 1100]

    def mmcv(step, peak=1e-4):  # mmcv's StepLrUpdaterHook with linear warmup, by_epoch
        epoch = step // steps
        regular = peak * 0.1 ** sum(epoch >= s for s in (8, 11))
        if step < 500:
            return regular * (1 - (1 - step / 500) * (1 - 1e-3))
        return regular

    for step in (0, 1, 250, 499, 500, 799, 800, 801, 1099, 1100, 1199):
        assert float(ops.convert_to_numpy(schedule(step))) == pytest.approx(mmcv(step), rel=1e-5)
    halved = recipe.schedule(batch_size=8, steps_per_epoch=steps, epochs=12)
    assert float(ops.convert_to_numpy(halved(600))) == pytest.approx(5e-5, rel=1e-6)  # linear scaling
    assert recipe.decay_steps(10, 24) == [160, 220]  # a longer run: the same fractions
    assert StepDecay.from_config(schedule.get_config()).get_config() == schedule.get_config()
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.LayerNormalization()(keras.layers.Conv2D(4, 3)(inputs)))
    optimizer = recipe.optimizer(model, batch_size=16, steps_per_epoch=steps, epochs=12)
    optimizer.build(model.trainable_variables)
    assert all(optimizer._use_weight_decay(v) for v in model.trainable_variables)  # no paramwise_cfg
    assert optimizer.clipnorm is None and optimizer.weight_decay == pytest.approx(1e-4)
    assert set(recipe.loss()) == {"cls_logits", "box_deltas"}


def test_cli_maps_the_detection_flags_and_refuses_the_others(capsys):
    from keras_pvt.cli import build_parser, main
    from keras_pvt.cli.train import DET_DATA, DET_RECIPE, DET_RUN, DETECTOR, _detection_recipe, options_from
    from keras_pvt.training import DetectionDataOptions, DetectionRecipe, DetectorOptions

    args = build_parser().parse_args(["train", "--task", "detection"])
    assert options_from(args, DET_DATA) == DetectionDataOptions()
    assert options_from(args, DET_RECIPE) == DetectionRecipe()
    assert options_from(args, DETECTOR) == DetectorOptions()
    run = options_from(args, DET_RUN)
    assert (run.output, run.epochs) == ("runs/retinanet", 12)
    flags = ["--image-size", "800x1333", "--backbone-weights", "imagenet", "--warmup-steps", "0"]
    args = build_parser().parse_args(["train", "--task", "detection", *flags, "--lr", "2e-4"])
    assert options_from(args, DET_DATA).image_size == (800, 1333)
    assert options_from(args, DETECTOR).backbone_weights == "imagenet"
    assert options_from(args, DET_RECIPE) == DetectionRecipe(base_lr=2e-4, warmup_steps=0)
    assert options_from(args, DET_RUN).epochs == 12
    assert build_parser().parse_args(["train"]).epochs is None  # each task's own default
    assert _detection_recipe(args) == DetectionRecipe(base_lr=2e-4, warmup_steps=0)
    assert capsys.readouterr().err == ""
    for argv, flag in (
        (["--task", "detection", "--logits-stride", "4"], "--logits-stride"),
        (["--task", "detection", "--min-lr", "0"], "--min-lr"),
        (["--stacked-convs", "2"], "--stacked-convs"),  # classification
        (["--task", "segmentation", "--eval-every", "2"], "--eval-every"),
    ):
        assert main(["train", *argv]) == 2
        assert flag in capsys.readouterr().err


def test_from_scratch_without_lr_takes_the_from_scratch_rate_and_says_so(capsys):
    from keras_pvt.cli import build_parser
    from keras_pvt.cli.train import _detection_recipe
    from keras_pvt.training import DetectionRecipe

    def recipe(*flags):
        return _detection_recipe(build_parser().parse_args(["train", "--task", "detection", *flags]))

    assert recipe() == DetectionRecipe(base_lr=2e-3, warmup_steps=50)
    assert "training from scratch" in capsys.readouterr().err
    assert recipe("--warmup-steps", "7") == DetectionRecipe(base_lr=2e-3, warmup_steps=7)
    assert recipe("--lr", "1e-4") == DetectionRecipe()  # the paper's, asked for
    assert recipe("--backbone-weights", "imagenet") == DetectionRecipe()
    assert recipe("--weights", "detector.keras") == DetectionRecipe()


def test_bad_options_are_refused_before_any_work(tmp_path):
    from keras_pvt.training import DetectionDataOptions, DetectionRecipe, DetectorOptions, train_detection

    with pytest.raises(ValueError, match="invalid_boxes"):
        DetectionDataOptions(invalid_boxes="drop")
    with pytest.raises(ValueError, match="stacked_convs"):
        DetectorOptions(stacked_convs=-1)
    with pytest.raises(ValueError, match="lr"):
        DetectionRecipe(base_lr=0.0)
    with pytest.raises(ValueError, match="decay_epochs must be increasing"):
        DetectionRecipe(decay_epochs=(11, 8))
    with pytest.raises(ValueError, match="warmup_steps"):
        DetectionRecipe(warmup_steps=-1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'logits_stride'"):
        train_detection(TINY, logits_stride=4, output=str(tmp_path))
    with pytest.raises(ValueError, match="too small"):
        train_detection(TINY, image_size=16, output=str(tmp_path))
    with pytest.raises(ValueError, match="eval_every"):
        train_detection(TINY, eval_every=0, output=str(tmp_path))
    assert not os.listdir(tmp_path)  # refused before the run folder was touched


def test_without_pycocotools_the_extra_is_named_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    from keras_pvt._requires import PycocotoolsRequiredError
    from keras_pvt.cli import main
    from keras_pvt.training import train_detection

    monkeypatch.setitem(sys.modules, "pycocotools", None)  # `import pycocotools...` fails
    monkeypatch.setitem(sys.modules, "pycocotools.coco", None)
    output = tmp_path / "run"
    with pytest.raises(PycocotoolsRequiredError, match=r"pip install 'keras-pvt\[detection\]'"):
        train_detection(TINY, output=str(output))
    assert main(["train", "--task", "detection", "--output", str(output)]) == 2
    assert "pip install 'keras-pvt[detection]'" in capsys.readouterr().err
    assert not output.exists()


def test_weights_fill_the_whole_detector_or_its_backbone(tmp_path):
    """A saved detector (``best.keras``: images -> boxes) loads whole into the raw training model;
    a classifier's weights fill the backbone; with --backbone-weights, --weights must be whole."""
    from keras_pvt import PVT_V2, RetinaNet
    from keras_pvt.detection import detector_model
    from keras_pvt.training import DetectorOptions
    from keras_pvt.training.detection import _build_detector

    options = DetectorOptions(**HEAD)
    config = TINY.replace(drop_path_rate=0.1)
    source = RetinaNet(config, 6, raw_outputs=True, **HEAD)
    whole = str(tmp_path / "best.keras")
    detector_model(source).save(whole)
    model, what = _build_detector(config, "custom", 6, whole, options)
    assert what == "detector" and "cls_logits" in model.output
    theirs = {w.path: ops.convert_to_numpy(w) for w in source.weights}
    assert len(theirs) == len(model.weights)
    for mine in model.weights:
        np.testing.assert_array_equal(ops.convert_to_numpy(mine), theirs[mine.path])
    classifier = str(tmp_path / "classifier.weights.h5")
    PVT_V2(config).save_weights(classifier)
    assert _build_detector(config, "custom", 6, classifier, options)[1] == "backbone"
    both = DetectorOptions(backbone_weights=classifier, **HEAD)
    assert _build_detector(config, "custom", 6, None, both)[1] == "backbone"
    with pytest.raises(ValueError, match="must be one"):
        _build_detector(config, "custom", 6, classifier, both)
