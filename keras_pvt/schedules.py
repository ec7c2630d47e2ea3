"""Learning-rate schedules saved inside trained models (Keras-only; registered on `import keras_pvt`).

All are Keras' own schedules under the recipes' arguments: `WarmupCosine` is `CosineDecay` with its
warmup, `PolyDecay` is `PolynomialDecay` and `StepDecay` is `PiecewiseConstantDecay`, each times
mmcv's linear warmup factor (which Keras lacks). Their names and configs are those trained models
already hold, so those models keep loading.
"""

from __future__ import annotations

from collections.abc import Sequence
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
        return _linear_warmup(super().__call__(step), step, self.warmup_steps, self.warmup_ratio)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak_lr": self.peak_lr,
            "total_steps": self.total_steps,
            "power": self.power,
            "min_lr": self.min_lr,
            "warmup_steps": self.warmup_steps,
            "warmup_ratio": self.warmup_ratio,
        }


@keras.saving.register_keras_serializable(package="keras_pvt")
class StepDecay(keras.optimizers.schedules.PiecewiseConstantDecay):
    """mmcv's ``step`` policy: `peak_lr` times `factor` for every one of `decay_steps` reached
    (0-based optimizer steps: the rate of step ``decay_steps[i]`` is already decayed), with an
    optional linear warmup over `warmup_steps` that scales it by a factor rising from
    `warmup_ratio` to 1 (mmcv's ``warmup="linear"``). Keras' `PiecewiseConstantDecay` with the
    values ``peak_lr * factor ** i`` and the boundaries ``decay_steps[i] - 1``."""

    def __init__(
        self,
        peak_lr: float,
        decay_steps: Sequence[int] = (),
        factor: float = 0.1,
        warmup_steps: int = 0,
        warmup_ratio: float = 1e-3,
    ) -> None:
        steps = [int(s) for s in decay_steps]
        if any(s < 0 for s in steps) or steps != sorted(steps):
            raise ValueError(f"StepDecay needs increasing decay_steps >= 0, got {list(decay_steps)}.")
        if warmup_steps < 0:
            raise ValueError(f"StepDecay needs warmup_steps >= 0, got {warmup_steps}.")
        self.peak_lr = float(peak_lr)
        self.decay_steps = steps
        self.factor = float(factor)
        self.warmup_steps = int(warmup_steps)
        self.warmup_ratio = float(warmup_ratio)
        values = [self.peak_lr * self.factor**i for i in range(len(steps) + 1)]
        boundaries = [s - 1 for s in steps]  # Keras: values[i] while step <= boundaries[i]
        if not steps:  # Keras needs one boundary
            boundaries, values = [0], [self.peak_lr, self.peak_lr]
        super().__init__(boundaries, values, name="StepDecay")

    def __call__(self, step: Any) -> Any:
        return _linear_warmup(super().__call__(step), step, self.warmup_steps, self.warmup_ratio)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak_lr": self.peak_lr,
            "decay_steps": list(self.decay_steps),
            "factor": self.factor,
            "warmup_steps": self.warmup_steps,
            "warmup_ratio": self.warmup_ratio,
        }


def _linear_warmup(rate: Any, step: Any, warmup_steps: int, warmup_ratio: float) -> Any:
    """`rate` times mmcv's linear warmup factor, rising from `warmup_ratio` at step 0 to 1 at
    `warmup_steps` (`rate` itself from there, and when `warmup_steps` is 0)."""
    if not warmup_steps:
        return rate
    step = ops.cast(step, rate.dtype)
    # mmcv's 1 - (1 - step / warmup_steps) * (1 - warmup_ratio), without its cancellation
    factor = warmup_ratio + (1.0 - warmup_ratio) * step / warmup_steps
    return ops.where(step < warmup_steps, rate * factor, rate)


def _check_steps(total_steps: int, warmup_steps: int) -> None:
    if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(
            f"Need total_steps >= 1 and 0 <= warmup_steps <= total_steps, got "
            f"{total_steps} and {warmup_steps}."
        )
