"""`train_segmentation` and `keras-pvt train --task segmentation`: outputs, metric columns, resume,
the recipe and its poly schedule, the CLI mapping, a mask refused while training, and a fit on
NumPy arrays on every backend."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_pvt.schedules import PolyDecay
from keras_pvt.segmentation.losses import SegmentationCrossEntropy
from keras_pvt.segmentation.metrics import MeanIoU, PixelAccuracy
from keras_pvt.segmentation.model import SemanticFPN

from helpers import tiny_config

SMALL_DATA = "keras_pvt_seg_shapes/32px_16_8"  # 16 train / 8 test images, 7 classes
TINY = tiny_config()
HEAD = {"fpn_channels": 8, "head_channels": 8}
METRIC_COLUMNS = {"loss", "mean_iou", "pixel_accuracy", "val_loss", "val_mean_iou", "val_pixel_accuracy"}


def _json(path):
    with open(path) as handle:
        return json.load(handle)


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


@pytest.fixture(scope="module")
def resumed_run(tfds_dir, tmp_path_factory):
    """A 2-epoch run interrupted after epoch 1, then resumed through ``keras-pvt train --task
    segmentation`` with the same settings (the real CLI path; only the backbone is shrunk, as b0
    would cost a minute on 2 cores): (what the interrupted run left, the epochs the CLI ran, its
    result, its output)."""
    from keras_pvt import training
    from keras_pvt.cli import main

    output = str(tmp_path_factory.mktemp("seg_run"))
    with pytest.raises(_InterruptedError):
        training.train_segmentation(
            TINY,
            callbacks=[_InterruptAfterFirstEpoch()],
            dataset=SMALL_DATA,
            data_dir=tfds_dir,
            output=output,
            image_size=32,
            batch_size=4,
            epochs=2,
            steps_per_epoch=2,
            logits_stride=4,
            scale_range=(0.75, 1.5),
            ignore_label=254,
            recipe=training.SegmentationRecipe(base_lr=1e-3),
            verbose=0,
            **HEAD,
        )
    left = {
        "history": training.outputs.read_history(os.path.join(output, "history.csv")),
        "state": _json(os.path.join(output, "backup", "state.json")),
        "status": _json(os.path.join(output, "run.json"))["status"],
    }
    seen, results = [], []
    record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(epoch))
    real = training.train_segmentation

    def shrunk(backbone, **options):
        assert backbone == "b0"
        results.append(real(TINY, callbacks=[record], **options))
        return results[-1]

    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()) as printed:
        patch.setattr(training, "train_segmentation", shrunk)
        code = main(
            [
                "train",
                "--task",
                "segmentation",
                *("--dataset", SMALL_DATA, "--data-dir", tfds_dir, "--image-size", "32"),
                *("--batch-size", "4", "--epochs", "2", "--steps-per-epoch", "2", "--lr", "1e-3"),
                *("--fpn-channels", "8", "--head-channels", "8", "--logits-stride", "4"),
                *("--scale-range", "0.75", "1.5", "--ignore-label", "254", "--output", output),
            ]
        )
    assert code == 0
    return left, seen, results[0], printed.getvalue()


@pytest.mark.slow
def test_interrupted_run_resumes_from_its_last_finished_epoch(resumed_run):
    left, seen, result, _ = resumed_run
    assert left["status"] == "running" and left["state"]["epochs_done"] == 1
    assert left["history"]["epoch"] == [0]
    assert seen == [1]  # the finished epoch is not repeated
    assert result.history["epoch"] == [0, 1] and result.epochs_run == 2
    assert int(ops.convert_to_numpy(result.model.optimizer.iterations)) == 4  # optimizer state restored
    assert not os.path.exists(os.path.join(result.output, "backup"))


@pytest.mark.slow
def test_cli_maps_the_segmentation_flags(resumed_run):
    *_, result, printed = resumed_run
    assert "best validation mean IoU" in printed and "background" in printed  # summary + table
    run = _json(os.path.join(result.output, "run.json"))
    assert run["segmenter"]["logits_stride"] == 4 and run["segmenter"]["fpn_channels"] == 8
    assert run["scale_range"] == [0.75, 1.5] and run["ignore_label"] == 254
    assert run["recipe"]["base_lr"] == 1e-3 and run["recipe"]["weight_decay"] == 1e-4


@pytest.mark.slow
def test_outputs_metric_columns_and_per_class_iou(resumed_run):
    *_, result, _ = resumed_run
    out = result.output
    for name in ("best.keras", "history.csv", "training_curves.png", "run.json"):
        assert os.path.isfile(os.path.join(out, name)), name
    assert set(result.history) >= METRIC_COLUMNS
    assert all(0.0 <= v <= 1.0 for v in result.history["val_mean_iou"] + result.history["pixel_accuracy"])
    run = _json(os.path.join(out, "run.json"))
    assert run["task"] == "segmentation" and run["status"] == "finished"
    assert run["peak_lr"] == pytest.approx(1e-3 * 4 / 16)
    assert run["class_names"][0] == "background" and len(run["class_names"]) == 7
    assert list(result.per_class_iou) == run["class_names"] == result.class_names
    assert run["per_class_iou"] == list(result.per_class_iou.values())
    seen = [v for v in run["per_class_iou"] if v is not None]
    # the best model re-evaluated on the validation set: the epoch's val_mean_iou again
    assert np.mean(seen) == pytest.approx(result.best_val_mean_iou, abs=1e-6)
    assert run["best_val_mean_iou"] == pytest.approx(max(result.history["val_mean_iou"]))
    loaded = keras.saving.load_model(os.path.join(out, "best.keras"), safe_mode=True)
    logits = loaded.predict(np.zeros((1, 40, 56, 3), "float32"), verbose=0)
    assert logits.shape == (1, 10, 14, 7) and logits.dtype == np.float32  # stride-4 logits, as trained


def test_cli_defaults_and_flags_of_the_other_task(capsys):
    from keras_pvt.cli import build_parser, main
    from keras_pvt.cli.train import SEG_DATA, options_from
    from keras_pvt.training import RunOptions, SegmentationDataOptions

    args = build_parser().parse_args(["train", "--task", "segmentation"])
    assert options_from(args, SEG_DATA) == SegmentationDataOptions()
    assert options_from(args, RunOptions(output="x")).output == "x"
    assert main(["train", "--crop-scale", "0.5", "1", "--task", "segmentation"]) == 2
    assert "--crop-scale" in capsys.readouterr().err
    assert main(["train", "--logits-stride", "4"]) == 2  # classification
    assert "--logits-stride" in capsys.readouterr().err


def test_recipe_poly_schedule_and_weight_decay_like_the_mmseg_configs():
    from keras_pvt.training import SegmentationRecipe

    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, outputs)
    recipe = SegmentationRecipe()
    optimizer = recipe.optimizer(model, batch_size=32, steps_per_epoch=10, epochs=4)
    optimizer.build(model.trainable_variables)
    assert all(optimizer._use_weight_decay(v) for v in model.trainable_variables)  # no paramwise_cfg
    schedule = optimizer._learning_rate
    assert isinstance(schedule, PolyDecay) and schedule.peak_lr == pytest.approx(4e-4)  # 2e-4 * 32/16
    for step in (0, 13, 39, 40, 55):
        expected = 4e-4 * (1 - min(step, 40) / 40) ** 0.9  # mmcv poly, min_lr 0
        assert float(ops.convert_to_numpy(schedule(step))) == pytest.approx(expected, rel=1e-5, abs=1e-12)
    assert PolyDecay.from_config(schedule.get_config()).get_config() == schedule.get_config()
    excluded = SegmentationRecipe(decay_norms_and_biases=False).optimizer(model, 16, 10, 1)
    excluded.build(model.trainable_variables)
    assert [len(v.shape) for v in model.trainable_variables if excluded._use_weight_decay(v)] == [4]
    warm = SegmentationRecipe(warmup_epochs=1, warmup_ratio=0.1).schedule(16, 10, 4)
    poly_at_5 = 2e-4 * (1 - 5 / 40) ** 0.9
    assert float(ops.convert_to_numpy(warm(5))) == pytest.approx(poly_at_5 * (1 - 0.5 * 0.9), rel=1e-5)
    assert float(ops.convert_to_numpy(warm(10))) == pytest.approx(2e-4 * (1 - 10 / 40) ** 0.9, rel=1e-5)


def test_bad_options_are_refused_before_any_work(tmp_path):
    from keras_pvt.training import (
        SegmentationDataOptions,
        SegmentationRecipe,
        SegmenterOptions,
        train_segmentation,
    )

    with pytest.raises(ValueError, match="scale_range"):
        SegmentationDataOptions(scale_range=(2.0, 1.0))
    with pytest.raises(ValueError, match="logits_stride"):
        SegmenterOptions(logits_stride=2)
    with pytest.raises(ValueError, match="lr"):
        SegmentationRecipe(base_lr=0.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'crop_scale'"):
        train_segmentation(TINY, crop_scale=(0.5, 1.0), output=str(tmp_path))
    with pytest.raises(ValueError, match="too small"):
        train_segmentation(TINY, image_size=16, output=str(tmp_path))
    assert not os.listdir(tmp_path)  # refused before the run folder was touched


def _fit_tiny_model(pipes, output):
    """`fit_in_run_folder` (the run folder of every training run) with a 1x1 conv as the model."""
    from keras_pvt.training import RunOptions
    from keras_pvt.training.resumable_fit import fit_in_run_folder, start_run

    def build(steps):
        inputs = keras.Input((None, None, 3))
        model = keras.Model(inputs, keras.layers.Conv2D(pipes.num_classes, 1)(inputs))
        model.compile("sgd", loss=SegmentationCrossEntropy(), metrics=[MeanIoU(pipes.num_classes)])
        return model

    run = RunOptions(output=str(output), epochs=1)
    fit = {"train": pipes.train, "val": pipes.val, "steps_per_epoch": pipes.steps_per_epoch}
    fit_in_run_folder(start_run(run), run, **fit, build=build, info={}, monitor="val_mean_iou", verbose=0)


def _folder_of_pairs(root, count=4):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for kind in ("images", "masks"):
        (root / kind).mkdir(parents=True)
    for i in range(count):
        pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        (root / "images" / f"{i}.png").write_bytes(tf.io.encode_png(pixels).numpy())
        labels = rng.integers(0, 3, (32, 32, 1), dtype=np.uint8)
        (root / "masks" / f"{i}.png").write_bytes(tf.io.encode_png(labels).numpy())
    (root / "classes.txt").write_text("a\nb\nc\n")


@pytest.mark.parametrize("output_was", ["absent", "an empty folder"])
def test_a_mask_refused_while_training_names_its_file_and_leaves_no_run_behind(tmp_path, output_was):
    """A mask that changed after the up-front check fails the first step with the pipeline's
    assertion: a `ValueError` naming the file; what the run made in its folder is removed."""
    import tensorflow as tf

    from keras_pvt import data

    _folder_of_pairs(tmp_path / "pairs", count=5)
    pipes = data.make_segmentation_pipelines(
        str(tmp_path / "pairs"), image_size=32, batch_size=2, val_fraction=0.2, shuffle=False
    )
    bad = tf.io.encode_png(np.full((32, 32, 1), 9, np.uint8)).numpy()
    for i in range(5):
        (tmp_path / "pairs" / "masks" / f"{i}.png").write_bytes(bad)
    output = tmp_path / "run"
    if output_was == "an empty folder":
        output.mkdir()
    message = r"Bad segmentation mask \S+masks/\d\.png holds a label >= 3 .*: 9\. Fix the mask"
    with pytest.raises(ValueError, match=message):
        _fit_tiny_model(pipes, output)
    assert not output.exists() if output_was == "absent" else not any(output.iterdir())


@pytest.mark.slow
@pytest.mark.all_backends
def test_fit_on_numpy_arrays_every_backend(rng):
    if keras.backend.backend() == "tensorflow":
        pytest.skip("on TensorFlow, model.fit of a segmenter is covered by the train_segmentation tests")
    images = rng.normal(size=(4, 32, 32, 3)).astype("float32")
    masks = rng.integers(0, 3, (4, 32, 32)).astype("int32")
    masks[:, :4] = 255
    model = SemanticFPN(TINY, 3, **HEAD, logits_stride=4)
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-3),
        loss=SegmentationCrossEntropy(),
        metrics=[MeanIoU(3), PixelAccuracy()],
    )
    history = model.fit(images, masks, batch_size=2, epochs=1, verbose=0).history
    assert math.isfinite(history["loss"][0]) and 0.0 <= history["mean_iou"][0] <= 1.0
    assert 0.0 <= history["pixel_accuracy"][0] <= 1.0
