"""`compile_inference` on JAX: the model's stateless call compiled whole by `jax.jit`.

"xla" traces a copy of the model with each 3x3 depthwise conv rewritten as nine shifted
multiply-adds (`keras_pvt.rewrites.XLA`; XLA's own depthwise conv is several times slower on CPU);
"plain" jits the model as it is. The weights enter the compiled function as arguments, read from
the model's variables on every call (or from a snapshot taken once, with ``freeze_weights``), so
they are never baked into the executable. `jax.jit` compiles once per input shape. JAX only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import keras
from keras import ops

from keras_pvt.inference.weights import check_same_variables, weights_source
from keras_pvt.rewrites import XLA, rewritten


def compile_jax(
    model: keras.Model, engine: str, freeze_weights: bool, checked_images: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    """`compile_inference` on JAX, its arguments checked by the caller (`checked_images` refuses
    what the model cannot take and returns a float32 array)."""
    runner = rewritten(model, XLA) if engine == "xla" else model
    check_same_variables(model, runner)

    def forward(trainable: list[Any], non_trainable: list[Any], images: Any) -> Any:
        outputs, _ = runner.stateless_call(trainable, non_trainable, images, training=False)
        return keras.tree.map_structure(lambda t: ops.cast(t, "float32"), outputs)

    compiled = jax.jit(forward)
    weights = weights_source(model, freeze_weights, lambda value: jax.numpy.array(value, copy=True))

    def run(images: Any) -> Any:
        return compiled(*weights(), checked_images(images))

    run.model = model  # type: ignore[attr-defined]
    return run
