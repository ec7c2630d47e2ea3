"""Learning-rate schedules saved inside trained models (Keras-only; registered on `import keras_pvt`).

Both are Keras' own schedules under the recipes' arguments: `WarmupCosine` is `CosineDecay` with its
warmup, `PolyDecay` is `PolynomialDecay` times mmcv's linear warmup factor (which Keras lacks). Their
names and configs are those trained models already hold, so those models keep loading.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_pvt")
class WarmupCosine(keras.optimizers.schedules.CosineDecay):
    """Linear warmup from `warmup_lr` to `peak_lr` over `warmup_steps`, then cosine to `min_lr` at
    `total_steps`: Keras' `CosineDecay` (``warmup_target=peak_lr``, ``alpha=min_lr / peak_lr``)."""

    def __init__(
        self,
        peak_lr: float,
        total_steps: int,
        warmup_steps: int = 0,
        warmup_lr: float = 0.0,
        min_lr: float = 0.0,
    ) -> None:
        _check_steps(total_steps, warmup_steps)
        if not peak_lr > 0:
            raise ValueError(f"WarmupCosine needs peak_lr > 0, got {peak_lr}.")
        self.peak_lr = float(peak_lr)
        self.total_steps = int(total_steps)
        self.warmup_lr = float(warmup_lr)
        self.min_lr = float(min_lr)
        super().__init__(
            initial_learning_rate=self.warmup_lr,
            decay_steps=max(self.total_steps - int(warmup_steps), 1),
            alpha=self.min_lr / self.peak_lr,
            name="WarmupCosine",
            warmup_target=self.peak_lr,
            warmup_steps=int(warmup_steps),
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "peak_lr": self.peak_lr,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "warmup_lr": self.warmup_lr,
            "min_lr": self.min_lr,
        }


@keras.saving.register_keras_serializable(package="keras_pvt")
class PolyDecay(keras.optimizers.schedules.PolynomialDecay):
    """mmcv's ``poly`` policy, ``(peak_lr - min_lr) * (1 - step / total_steps) ** power + min_lr``
    (Keras' `PolynomialDecay`), with an optional linear warmup over `warmup_steps` that scales it by
    a factor rising from `warmup_ratio` to 1 (mmcv's ``warmup="linear"``); `min_lr` after `total_steps`."""

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
        self.min_lr = float(min_lr)
        self.warmup_steps = int(warmup_steps)
        self.warmup_ratio = float(warmup_ratio)
        super().__init__(
            initial_learning_rate=self.peak_lr,
            decay_steps=self.total_steps,
            end_learning_rate=self.min_lr,
            power=float(power),
            name="PolyDecay",
        )

    def __call__(self, step: Any) -> Any:
        poly = super().__call__(step)
        if not self.warmup_steps:
            return poly
        step = ops.cast(step, poly.dtype)
        # mmcv's 1 - (1 - step / warmup_steps) * (1 - warmup_ratio), without its cancellation
        factor = self.warmup_ratio + (1.0 - self.warmup_ratio) * step / self.warmup_steps
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
