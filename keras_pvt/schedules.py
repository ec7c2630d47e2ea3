"""Learning-rate schedules saved inside trained models (Keras-only; registered on `import keras_pvt`)."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops


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
        _check_steps(total_steps, warmup_steps)
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


@keras.saving.register_keras_serializable(package="keras_pvt")
class PolyDecay(keras.optimizers.schedules.LearningRateSchedule):
    """mmcv's ``poly`` policy: ``(peak_lr - min_lr) * (1 - step / total_steps) ** power + min_lr``,
    with an optional linear warmup over `warmup_steps` that scales it by a factor rising from
    `warmup_ratio` to 1 (mmcv's ``warmup="linear"``); `min_lr` after `total_steps`."""

    def __init__(
        self,
        peak_lr: float,
        total_steps: int,
        power: float = 0.9,
        min_lr: float = 0.0,
        warmup_steps: int = 0,
        warmup_ratio: float = 1e-6,
    ) -> None:
        _check_steps(total_steps, warmup_steps)
        self.peak_lr = float(peak_lr)
        self.total_steps = int(total_steps)
        self.power = float(power)
        self.min_lr = float(min_lr)
        self.warmup_steps = int(warmup_steps)
        self.warmup_ratio = float(warmup_ratio)

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        remaining = ops.clip(1.0 - step / self.total_steps, 0.0, 1.0)
        poly = (self.peak_lr - self.min_lr) * ops.power(remaining, self.power) + self.min_lr
        warmup = max(self.warmup_steps, 1)
        factor = 1.0 - (1.0 - step / warmup) * (1.0 - self.warmup_ratio)
        return ops.where(step < self.warmup_steps, poly * factor, poly)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak_lr": self.peak_lr,
            "total_steps": self.total_steps,
            "power": self.power,
            "min_lr": self.min_lr,
            "warmup_steps": self.warmup_steps,
            "warmup_ratio": self.warmup_ratio,
        }


def _check_steps(total_steps: int, warmup_steps: int) -> None:
    if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(
            f"Need total_steps >= 1 and 0 <= warmup_steps <= total_steps, got "
            f"{total_steps} and {warmup_steps}."
        )
