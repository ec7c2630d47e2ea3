"""The PVT-v2 training recipe: AdamW, batch-scaled learning rate, warmup + cosine decay, weight decay
only on matrices/kernels, label smoothing."""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from keras_pvt.limits import number
from keras_pvt.schedules import WarmupCosine

REFERENCE_BATCH = 512  # the paper's lr 5e-4 is for a total batch of 512 (scaled linearly)


@dataclasses.dataclass(frozen=True, kw_only=True)
class AdamWSettings:
    """AdamW's settings besides the learning rate and its decay (PyTorch's defaults), shared by the
    classification, segmentation and detection recipes; keyword-only."""

    clip_norm: float | None = None
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8

    def __post_init__(self) -> None:
        if self.clip_norm is not None:
            number("clip_norm", self.clip_norm, 0.0, above=True)
        number("beta_1", self.beta_1, 0.0, 1.0, below=True)
        number("beta_2", self.beta_2, 0.0, 1.0, below=True)
        number("epsilon", self.epsilon, 0.0, above=True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BatchScaledAdamW(AdamWSettings):
    """The dense-prediction recipes' shared rules (no fields of its own): the peak learning rate is
    ``base_lr * batch / reference_batch``, and weight decay applies to every weight unless
    ``decay_norms_and_biases`` is False. A subclass defines those fields and ``schedule(batch_size,
    steps_per_epoch, epochs)``."""

    def peak_lr(self, batch_size: int) -> float:
        return self.base_lr * batch_size / self.reference_batch

    def optimizer(
        self, model: keras.Model, batch_size: int, steps_per_epoch: int, epochs: int
    ) -> keras.optimizers.AdamW:
        """AdamW on `model` following ``schedule``, with weight decay on every weight (or not on
        the 0/1-D ones when ``decay_norms_and_biases`` is False)."""
        no_decay = [] if self.decay_norms_and_biases else no_decay_variables(model)
        schedule = self.schedule(batch_size, steps_per_epoch, epochs)
        return adamw(self, schedule, no_decay=no_decay)


@dataclasses.dataclass(frozen=True)
class Recipe(AdamWSettings):
    """Optimisation hyper-parameters; defaults are the paper's ImageNet recipe (PVT-v2, DeiT-style).

    `base_lr` is the learning rate for a batch of 512; the used peak is ``base_lr * batch / 512``.
    Out-of-range values (a learning rate that is not > 0, NaN, ...) raise `ValueError`.
    """

    base_lr: float = 5e-4
    min_lr: float = 1e-5
    warmup_lr: float = 1e-6
    warmup_epochs: float = 5.0
    weight_decay: float = 0.05
    label_smoothing: float = 0.1

    def __post_init__(self) -> None:
        number("base_lr (--lr)", self.base_lr, 0.0, above=True)
        for name in ("min_lr", "warmup_lr", "warmup_epochs", "weight_decay"):
            number(name, getattr(self, name), 0.0)
        number("label_smoothing", self.label_smoothing, 0.0, 1.0, below=True)
        super().__post_init__()

    def peak_lr(self, batch_size: int) -> float:
        return self.base_lr * batch_size / REFERENCE_BATCH

    def schedule(self, batch_size: int, steps_per_epoch: int, epochs: int) -> WarmupCosine:
        """The per-step schedule of a run of `epochs` epochs of `steps_per_epoch` steps."""
        peak = self.peak_lr(batch_size)
        return WarmupCosine(
            peak_lr=peak,
            total_steps=max(1, steps_per_epoch * epochs),
            warmup_steps=round(steps_per_epoch * min(self.warmup_epochs, max(epochs - 1, 0))),
            warmup_lr=min(self.warmup_lr, peak),
            min_lr=min(self.min_lr, peak),
        )

    def optimizer(
        self, model: keras.Model, batch_size: int, steps_per_epoch: int, epochs: int
    ) -> keras.optimizers.AdamW:
        """AdamW on `model` with weight decay off for norms, biases and every other 0/1-D weight."""
        schedule = self.schedule(batch_size, steps_per_epoch, epochs)
        return adamw(self, schedule, no_decay=no_decay_variables(model))

    def loss(self) -> keras.losses.Loss:
        """Cross-entropy on one-hot labels with label smoothing."""
        return keras.losses.CategoricalCrossentropy(label_smoothing=self.label_smoothing)


def adamw(
    recipe: AdamWSettings, schedule: keras.optimizers.schedules.LearningRateSchedule, no_decay: list[Any]
) -> keras.optimizers.AdamW:
    """Keras' (decoupled, as PyTorch's) AdamW with `recipe`'s betas, epsilon, clipping and
    ``weight_decay``, following `schedule`, with no weight decay on the variables `no_decay`."""
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=recipe.weight_decay,
        beta_1=recipe.beta_1,
        beta_2=recipe.beta_2,
        epsilon=recipe.epsilon,
        clipnorm=recipe.clip_norm,
    )
    if no_decay:
        optimizer.exclude_from_weight_decay(var_list=no_decay)
    return optimizer


def no_decay_variables(model: keras.Model) -> list[Any]:
    """Trainable weights excluded from weight decay: every bias and norm scale/offset (ndim <= 1)."""
    return [v for v in model.trainable_variables if len(v.shape) <= 1]
