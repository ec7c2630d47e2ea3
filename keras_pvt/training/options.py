"""What a training run reads (`DataOptions`) and how it runs (`RunOptions`); `Recipe` holds the
optimisation. Each field's default is the one `train` and `keras-pvt train` use; a bad value raises
`ValueError` when the options are made, before any work."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from keras_pvt.data import DATASET_NAME, Pipelines
from keras_pvt.limits import integer, number

if TYPE_CHECKING:
    import tensorflow as tf

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclasses.dataclass(frozen=True)
class DataOptions:
    """The images of a run and how they are fed (see `keras_pvt.data.make_pipelines`).

    Attributes:
        dataset: tfds name (e.g. "tf_flowers"), image folder (train/CLASS/*.jpg), the embedded
            offline "keras_pvt_shapes[/64px]", or ready `Pipelines` (their image and batch size
            then replace `image_size` and `batch_size`).
        image_size: training/evaluation resolution (any size >= the model's minimum).
        batch_size: global batch size (split over replicas).
        data_dir, download: the tensorflow-datasets folder; False: never download.
        augment, shuffle, crop_scale, cache: see `make_pipelines`.
        val_from_train: select the best epoch on 10% of ``train``, keeping ``test`` unseen.
    """

    dataset: str | Pipelines = DATASET_NAME
    image_size: int = 224
    batch_size: int = 64
    data_dir: str | None = None
    download: bool = True
    augment: bool = True
    shuffle: bool = True
    val_from_train: bool = False
    crop_scale: tuple[float, float] = (0.35, 1.0)
    cache: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.dataset, Pipelines):  # ready pipelines decide both sizes
            object.__setattr__(self, "image_size", self.dataset.image_size)
            object.__setattr__(self, "batch_size", self.dataset.batch_size)
        integer("batch_size", self.batch_size)
        integer("image_size", self.image_size)
        try:
            low, high = self.crop_scale
        except (TypeError, ValueError):
            raise ValueError(f"crop_scale must be a pair (min, max), got {self.crop_scale!r}.") from None
        number("crop_scale min", low, 0.0, 1.0, above=True)
        number("crop_scale max", high, low, 1.0)
        object.__setattr__(self, "crop_scale", (low, high))


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Where a run writes, what it starts from, how long and on what it runs.

    Attributes:
        output: run folder: ``best.keras`` (best validation accuracy), ``history.csv``,
            ``training_curves.png``, ``run.json``, ``logs/`` (TensorBoard, if installed) and
            ``backup/`` (resume state while a run is unfinished). Every file is written beside
            and renamed into place, so a killed run leaves no half-written file.
        weights: start from "imagenet", a checkpoint file the builders accept, or a ``.keras``
            model: the backbone is loaded, and the head too when it has the dataset's number of
            classes (else a new head is initialised).
        epochs: total epochs.
        steps_per_epoch: cap on steps per epoch (None: one pass over the training set).
        drop_path_rate: stochastic depth; None: the variant's default (0.1 for b0-b2, 0.3 for b3-b5).
        precision: "float32", "mixed_bfloat16" or "mixed_float16" (loss scaling added
            automatically; attention softmax, norms and the classifier output stay float32).
        jit_compile: compile train/eval steps with XLA.
        strategy: "auto", "mirrored", "multi_worker" (``TF_CONFIG``), "tpu", or a
            `tf.distribute.Strategy`; `tpu`: the TPU name/address for "tpu".
        resume: continue an interrupted run in `output` from its last finished epoch; False
            discards any backup and starts over.
        overwrite: train again in an `output` that holds a finished run (refused otherwise, with
            `ValueError`); only this package's files there are replaced.
        seed: data order, augmentation and initial weights (None: not seeded).
    """

    output: str = "runs/pvt_v2"
    weights: str | None = None
    epochs: int = 10
    steps_per_epoch: int | None = None
    drop_path_rate: float | None = None
    precision: str = "float32"
    jit_compile: bool = False
    strategy: str | tf.distribute.Strategy = "auto"
    tpu: str | None = None
    resume: bool = True
    overwrite: bool = False
    seed: int | None = 0

    def __post_init__(self) -> None:
        integer("epochs", self.epochs)
        if self.steps_per_epoch is not None:
            integer("steps_per_epoch (None: one pass over the data)", self.steps_per_epoch)
        if self.drop_path_rate is not None:
            number("drop_path_rate (--drop-path)", self.drop_path_rate, 0.0, 1.0, below=True)
        if self.seed is not None:
            integer("seed", self.seed, 0, 2**32 - 1)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}.")
