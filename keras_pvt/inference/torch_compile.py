"""`compile_inference` on PyTorch: the model called eagerly with autograd off.

Keras on PyTorch runs eagerly; what inference can drop is autograd's bookkeeping, which every call
of the model otherwise records (and which keeps outputs from converting to NumPy). Each call runs
under `torch.no_grad()`; with ``freeze_weights`` it runs the model's
stateless call on a snapshot of the weights taken once. PyTorch only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import torch
from keras import ops


def compile_torch(
    model: keras.Model, freeze_weights: bool, checked_images: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    """`compile_inference` on PyTorch, its arguments checked by the caller (`checked_images` refuses
    what the model cannot take and returns a float32 tensor)."""
    if freeze_weights:
        with torch.no_grad():
            trainable = [v.value.detach().clone() for v in model.trainable_variables]
            non_trainable = [v.value.detach().clone() for v in model.non_trainable_variables]

        def forward(images: Any) -> Any:
            outputs, _ = model.stateless_call(trainable, non_trainable, images, training=False)
            return outputs

    else:

        def forward(images: Any) -> Any:
            return model(images, training=False)

    def run(images: Any) -> Any:
        images = checked_images(images)
        with torch.no_grad():
            outputs = forward(images)
        return keras.tree.map_structure(lambda t: ops.cast(t, "float32"), outputs)

    run.model = model  # type: ignore[attr-defined]
    return run
