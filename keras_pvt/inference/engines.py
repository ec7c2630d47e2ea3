"""The engines of `compile_inference(engine=...)`, the default rule, and the old spellings' mapping.

Who runs the model: "xla" (the backend's XLA compiler: TensorFlow's ``jit_compile``, `jax.jit`),
"plain" (the backend's own runtime: a bare `tf.function`, `jax.jit` of the plain layers, PyTorch
with autograd off), "litert" and "openvino" (a float32 `.tflite` or an OpenVINO model converted per
input shape from a snapshot of the weights, TensorFlow backend), "measure" (each new input shape
built on every installed engine, timed, the fastest kept).

The default (``engine=None``) is a rule measured once on the benchmark machine and written down in
`benchmarks/results/default_engine.md`: on TensorFlow the first installed of `TENSORFLOW_DEFAULTS`;
on JAX "xla"; on PyTorch "plain".
"""

from __future__ import annotations

import importlib.util
import warnings

ENGINES = ("xla", "plain", "litert", "openvino", "measure")
BACKEND_ENGINES = {
    "tensorflow": ENGINES,
    "jax": ("xla", "plain"),
    "torch": ("plain",),
}
# The engines that run a snapshot of the weights converted per input shape (float32 only).
SNAPSHOT_ENGINES = ("litert", "openvino", "measure")
# On TensorFlow, the default engine: the first of these whose runtime is installed, fastest first
# (the measurement and its first-call costs: `benchmarks/results/default_engine.md`).
TENSORFLOW_DEFAULTS = ("openvino", "litert", "xla")
# The backend's own compiler: what the old engine="backend" and strategy="auto" ran.
BACKEND_COMPILER = {"tensorflow": "xla", "jax": "xla", "torch": "plain"}
# Old spellings, kept for one release with a DeprecationWarning: engine= values and strategy= values.
OLD_ENGINES = {"backend": None, "segments": "xla", "auto": "measure"}
OLD_STRATEGIES = {"auto": None, "xla": "xla", "segments": "xla", "plain": "plain"}


def installed(engine: str) -> bool:
    """Whether `engine`'s runtime can be imported here (without importing it)."""
    if engine == "litert":
        return importlib.util.find_spec("ai_edge_litert") is not None
    if engine == "openvino":
        return importlib.util.find_spec("openvino") is not None
    return True


def default_engine(backend: str, precision: str, freeze_weights: bool | None) -> str:
    """The engine of ``engine=None``: the backend's fastest, among those that honour the arguments.

    ``freeze_weights=False`` (follow later weight changes) and bfloat16 rule out the converting
    engines, leaving the backend's compiler ("plain" for bfloat16: XLA's CPU dots do not use AMX).
    """
    if backend != "tensorflow":
        return BACKEND_COMPILER[backend]
    if precision == "bfloat16":
        return "plain"
    if freeze_weights is False:
        return BACKEND_COMPILER[backend]
    return next(engine for engine in TENSORFLOW_DEFAULTS if installed(engine))


def translate_old_spellings(engine: str | None, strategy: str | None, backend: str) -> str | None:
    """`engine` with an old spelling (engine="backend", "segments", "auto"; any `strategy`) mapped
    to today's, with a DeprecationWarning; unknown values are left for the argument checks."""
    if strategy is not None:
        if engine is not None:
            raise ValueError(
                f"`strategy` is the old spelling of `engine`; pass engine= alone, got "
                f"engine={engine!r} and strategy={strategy!r}."
            )
        if strategy not in OLD_STRATEGIES:
            raise ValueError(f"`strategy` must be one of {tuple(OLD_STRATEGIES)}, got {strategy!r}.")
        new = OLD_STRATEGIES[strategy] or BACKEND_COMPILER.get(backend, "plain")
        _deprecated(f"strategy={strategy!r}", f"engine={new!r}")
        return new
    if engine in OLD_ENGINES:
        new = OLD_ENGINES[engine] or BACKEND_COMPILER.get(backend, "plain")
        _deprecated(f"engine={engine!r}", f"engine={new!r}")
        return new
    return engine


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"compile_inference({old}) is deprecated and will be removed in the next release; "
        f"use {new} (same outputs).",
        DeprecationWarning,
        stacklevel=4,
    )
