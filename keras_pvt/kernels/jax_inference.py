"""`compile_inference` on JAX: the model's stateless call compiled whole by `jax.jit`.

The "xla" path ("auto" on JAX) traces the model under the `jax_xla` table (each 3x3 depthwise conv
as nine shifted multiply-adds, which XLA fuses: its own depthwise conv is several times slower on
CPU); "plain" jits the plain kernels, for comparison. The weights enter the compiled function as
arguments, read from the model's variables on every call (or from a snapshot taken once, with
``freeze_weights``), so they are never baked into the executable. `jax.jit` compiles once per
input shape. JAX only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import keras
from keras import ops

import keras_pvt.kernels as kernels
from keras_pvt.kernels.jax_xla import JAX_XLA
from keras_pvt.kernels.plain import PLAIN


def compile_jax(
    model: keras.Model, strategy: str, freeze_weights: bool, checked_images: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    """`compile_inference` on JAX, its arguments checked by the caller (`checked_images` refuses
    what the model cannot take and returns a float32 array)."""
    table = PLAIN if strategy == "plain" else JAX_XLA

    def forward(trainable: list[Any], non_trainable: list[Any], images: Any) -> Any:
        with kernels.use(table):
            outputs, _ = model.stateless_call(trainable, non_trainable, images, training=False)
        return keras.tree.map_structure(lambda t: ops.cast(t, "float32"), outputs)

    compiled = jax.jit(forward)
    if freeze_weights:
        snapshot = (
            [jax.numpy.array(v.value, copy=True) for v in model.trainable_variables],
            [jax.numpy.array(v.value, copy=True) for v in model.non_trainable_variables],
        )

        def weights() -> tuple[list[Any], list[Any]]:
            return snapshot

    else:

        def weights() -> tuple[list[Any], list[Any]]:
            return (
                [v.value for v in model.trainable_variables],
                [v.value for v in model.non_trainable_variables],
            )

    def run(images: Any) -> Any:
        images = checked_images(images)
        return compiled(*weights(), images)

    run.model = model  # type: ignore[attr-defined]
    return run
