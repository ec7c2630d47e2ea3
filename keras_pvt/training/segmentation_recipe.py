"""The PVT-v2 Semantic FPN recipe (the PVTv2-Seg ADE20K configs): AdamW, batch-scaled learning rate,
poly decay, weight decay on every weight, pixel-wise cross-entropy with the ignore label."""

from __future__ import annotations

import dataclasses

import keras

from keras_pvt.limits import integer, number
from keras_pvt.schedules import PolyDecay
from keras_pvt.segmentation.losses import IGNORE_LABEL, SegmentationCrossEntropy
from keras_pvt.training.recipe import BatchScaledAdamW


@dataclasses.dataclass(frozen=True)
class SegmentationRecipe(BatchScaledAdamW):
    """Optimisation hyper-parameters; defaults are the paper's ADE20K Semantic FPN recipe.

    The used peak learning rate is ``base_lr * batch / reference_batch`` (2e-4 per 16 images;
    the published configs ran 8 GPUs x 4 images = 32 at 2e-4: set ``reference_batch=32`` for that
    scaling). It decays per step as mmcv's ``poly`` policy (``power`` 0.9) to ``min_lr`` 0
    over the run, after an optional linear warmup (``warmup_epochs``, from ``warmup_ratio`` times
    the rate; the configs use none). Weight decay 1e-4 is applied to every weight, norms and
    biases included, as those configs set no ``paramwise_cfg``; ``decay_norms_and_biases=False``
    excludes every 0/1-D weight like the classification recipe. AdamW as PyTorch's (decoupled
    decay, betas 0.9/0.999, eps 1e-8). Out-of-range values raise `ValueError`.
    """

    base_lr: float = 2e-4
    reference_batch: int = 16
    power: float = 0.9
    min_lr: float = 0.0
    warmup_epochs: float = 0.0
    warmup_ratio: float = 1e-6
    weight_decay: float = 1e-4
    decay_norms_and_biases: bool = True

    def __post_init__(self) -> None:
        number("base_lr (--lr)", self.base_lr, 0.0, above=True)
        integer("reference_batch", self.reference_batch)
        number("power", self.power, 0.0, above=True)
        for name in ("min_lr", "warmup_epochs", "weight_decay"):
            number(name, getattr(self, name), 0.0)
        number("warmup_ratio", self.warmup_ratio, 0.0, 1.0)
        super().__post_init__()

    def schedule(self, batch_size: int, steps_per_epoch: int, epochs: int) -> PolyDecay:
        """The per-step schedule of a run of `epochs` epochs of `steps_per_epoch` steps."""
        peak = self.peak_lr(batch_size)
        total = max(1, steps_per_epoch * epochs)
        return PolyDecay(
            peak_lr=peak,
            total_steps=total,
            power=self.power,
            min_lr=min(self.min_lr, peak),
            warmup_steps=min(round(steps_per_epoch * self.warmup_epochs), total),
            warmup_ratio=self.warmup_ratio,
        )

    def loss(self, ignore_label: int = IGNORE_LABEL) -> keras.losses.Loss:
        """Pixel-wise softmax cross-entropy, mean over the pixels not labelled `ignore_label`."""
        return SegmentationCrossEntropy(ignore_label=ignore_label)
