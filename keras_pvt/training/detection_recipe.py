"""The PVT-v2 RetinaNet 1x recipe (the paper's ``retinanet_pvt_v2_b*_fpn_1x_coco.py``, on mmdet's
``schedule_1x.py``): AdamW, batch-scaled learning rate, linear warmup, step decay at epochs 8 and 11
of 12, weight decay on every weight, no gradient clipping; sigmoid focal and L1 losses."""

from __future__ import annotations

import dataclasses

import keras

from keras_pvt.detection.head import BOX_OUTPUT, CLS_OUTPUT
from keras_pvt.detection.losses import RetinaNetBoxLoss, RetinaNetFocalLoss
from keras_pvt.limits import integer, number
from keras_pvt.schedules import StepDecay
from keras_pvt.training.recipe import BatchScaledAdamW

# From scratch (no pretrained backbone, e.g. offline) the paper's fine-tuning rate barely moves a
# detector in 12 epochs; the detection demo learns at this rate (per 16 images) with a short warmup.
FROM_SCRATCH_LR = 2e-3
FROM_SCRATCH_WARMUP_STEPS = 50


@dataclasses.dataclass(frozen=True)
class DetectionRecipe(BatchScaledAdamW):
    """Optimisation hyper-parameters; defaults are the paper's RetinaNet 1x COCO recipe.

    From the PVT-v2 detection configs: ``optimizer = dict(type='AdamW', lr=0.0001,
    weight_decay=0.0001)``, ``optimizer_config = dict(grad_clip=None)`` (no clipping: `clip_norm`
    None), and mmdet's ``schedule_1x.py``: ``lr_config = dict(policy='step', warmup='linear',
    warmup_iters=500, warmup_ratio=0.001, step=[8, 11])`` over 12 epochs, on mmdet's batch of 16
    (8 GPUs x 2 images).

    The used peak learning rate is ``base_lr * batch / reference_batch`` (1e-4 per 16 images,
    scaled linearly with the batch as the segmentation recipe does, mmdet's linear scaling rule).
    It rises over the first `warmup_steps` optimizer steps from `warmup_ratio` times the peak
    (mmcv's linear warmup, counted in steps whatever the batch, as mmdet counts iterations; at most
    the whole run), then is multiplied by `decay_factor` at each of `decay_epochs` out of
    `schedule_epochs`. A run of another length keeps the decays at the same fractions of its steps
    (a 24-epoch run decays at epochs 16 and 22); a 12-epoch run decays at the start of epochs 9
    and 12 (1-based), exactly as mmcv. Per step: Keras' `PiecewiseConstantDecay` with the warmup,
    saved in the model as `keras_pvt.schedules.StepDecay`. Weight decay 1e-4 applies to every
    weight, norms and biases included (the configs set no ``paramwise_cfg``;
    ``decay_norms_and_biases=False`` excludes every 0/1-D weight). AdamW as PyTorch's (decoupled
    decay, betas 0.9/0.999, eps 1e-8). Losses: mmdet's RetinaNet sigmoid focal loss (gamma 2, alpha
    0.25) and L1 box loss, both weight 1. Out-of-range values raise `ValueError`.
    """

    base_lr: float = 1e-4
    reference_batch: int = 16
    weight_decay: float = 1e-4
    warmup_steps: int = 500
    warmup_ratio: float = 1e-3
    decay_epochs: tuple[int, ...] = (8, 11)
    schedule_epochs: int = 12
    decay_factor: float = 0.1
    decay_norms_and_biases: bool = True
    focal_gamma: float = 2.0
    focal_alpha: float = 0.25

    def __post_init__(self) -> None:
        number("base_lr (--lr)", self.base_lr, 0.0, above=True)
        integer("reference_batch", self.reference_batch)
        number("weight_decay", self.weight_decay, 0.0)
        integer("warmup_steps (--warmup-steps)", self.warmup_steps, 0)
        number("warmup_ratio", self.warmup_ratio, 0.0, 1.0)
        integer("schedule_epochs", self.schedule_epochs)
        try:
            epochs = tuple(self.decay_epochs)
        except TypeError:
            raise ValueError(
                f"decay_epochs must be a sequence of epochs, got {self.decay_epochs!r}."
            ) from None
        for epoch in epochs:
            integer("decay_epochs entry", epoch, 0, self.schedule_epochs)
        if list(epochs) != sorted(epochs):
            raise ValueError(f"decay_epochs must be increasing, got {epochs}.")
        object.__setattr__(self, "decay_epochs", epochs)
        number("decay_factor", self.decay_factor, 0.0, 1.0, above=True)
        number("focal_gamma", self.focal_gamma, 0.0)
        number("focal_alpha", self.focal_alpha, 0.0, 1.0)
        super().__post_init__()

    def decay_steps(self, steps_per_epoch: int, epochs: int) -> list[int]:
        """The 0-based steps from which each decay applies: ``decay_epochs / schedule_epochs`` of
        the run's steps, rounded (``epoch * steps_per_epoch`` when `epochs` is `schedule_epochs`)."""
        total = steps_per_epoch * epochs
        return [(total * e + self.schedule_epochs // 2) // self.schedule_epochs for e in self.decay_epochs]

    def schedule(self, batch_size: int, steps_per_epoch: int, epochs: int) -> StepDecay:
        """The per-step schedule of a run of `epochs` epochs of `steps_per_epoch` steps."""
        total = max(1, steps_per_epoch * epochs)
        return StepDecay(
            peak_lr=self.peak_lr(batch_size),
            decay_steps=self.decay_steps(steps_per_epoch, epochs),
            factor=self.decay_factor,
            warmup_steps=min(self.warmup_steps, total),
            warmup_ratio=self.warmup_ratio,
        )

    def loss(self) -> dict[str, keras.losses.Loss]:
        """The losses of RetinaNet's raw outputs, by output name (mmdet's ``loss_cls`` and ``loss_bbox``)."""
        return {
            CLS_OUTPUT: RetinaNetFocalLoss(gamma=self.focal_gamma, alpha=self.focal_alpha),
            BOX_OUTPUT: RetinaNetBoxLoss(),
        }
