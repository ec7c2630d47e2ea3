"""The PVT-v2 training recipe: AdamW, batch-scaled learning rate, warmup + cosine decay, weight decay
only on matrices/kernels, label smoothing."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import keras
from keras import ops

REFERENCE_BATCH = 512  # the paper's lr 5e-4 is for a total batch of 512 (scaled linearly)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Optimisation hyper-parameters; defaults are the paper's ImageNet recipe (PVT-v2, DeiT-style).

    `base_lr` is the learning rate for a batch of 512; the used peak is ``base_lr * batch / 512``.
    """

    base_lr: float = 5e-4
    min_lr: float = 1e-5
    warmup_lr: float = 1e-6
    warmup_epochs: float = 5.0
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    clip_norm: float | None = None
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8

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
        optimizer = keras.optimizers.AdamW(
            learning_rate=self.schedule(batch_size, steps_per_epoch, epochs),
            weight_decay=self.weight_decay,
            beta_1=self.beta_1,
            beta_2=self.beta_2,
            epsilon=self.epsilon,
            clipnorm=self.clip_norm,
        )
        optimizer.exclude_from_weight_decay(var_list=no_decay_variables(model))
        return optimizer

    def loss(self) -> keras.losses.Loss:
        """Cross-entropy on one-hot labels with label smoothing."""
        return keras.losses.CategoricalCrossentropy(label_smoothing=self.label_smoothing)


def no_decay_variables(model: keras.Model) -> list[Any]:
    """Trainable weights excluded from weight decay: every bias and norm scale/offset (ndim <= 1)."""
    return [v for v in model.trainable_variables if len(v.shape) <= 1]


@keras.saving.register_keras_serializable(package="keras_pvt")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from `warmup_lr` to `peak_lr` over `warmup_steps`, then cosine to `min_lr`."""

    def __init__(
        self,
        peak_lr: float,
        total_steps: int,
        warmup_steps: int = 0,
        warmup_lr: float = 0.0,
        min_lr: float = 0.0,
    ) -> None:
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                f"Need total_steps >= 1 and 0 <= warmup_steps <= total_steps, got "
                f"{total_steps} and {warmup_steps}."
            )
        self.peak_lr = float(peak_lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.warmup_lr = float(warmup_lr)
        self.min_lr = float(min_lr)

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        warmup = max(self.warmup_steps, 1)
        warm = self.warmup_lr + (self.peak_lr - self.warmup_lr) * step / warmup
        decay_steps = max(self.total_steps - self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        cosine = self.min_lr + 0.5 * (self.peak_lr - self.min_lr) * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, warm, cosine)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak_lr": self.peak_lr,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "warmup_lr": self.warmup_lr,
            "min_lr": self.min_lr,
        }
