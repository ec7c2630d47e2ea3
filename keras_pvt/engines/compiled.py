"""`compile_inference(..., engine=...)` on TensorFlow: the callable that runs each input shape on
its engine, built on the shape's first call and cached (`ShapeCache`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import keras

from keras_pvt.engines.cache import ShapeCache
from keras_pvt.engines.choices import ChoicesFile
from keras_pvt.engines.measure import AutoChoice, fastest
from keras_pvt.engines.snapshot import frozen_copy
from keras_pvt.engines.tensorflow import TensorFlowEngine
from keras_pvt.inference.engines import installed

# The engines engine="measure" times, when installed.
AUTO_CANDIDATES = ("xla", "litert", "openvino")


def default_threads() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def available_engines() -> tuple[str, ...]:
    """The engines of `AUTO_CANDIDATES` whose runtime is installed here."""
    return tuple(name for name in AUTO_CANDIDATES if installed(name))


def _make_engine(name: str, model: keras.Model, threads: int, checked_images: Callable[[Any], Any]) -> Any:
    if name == "litert":
        from keras_pvt.engines.litert import LiteRTEngine

        return LiteRTEngine(model, threads)
    if name == "openvino":
        from keras_pvt.engines.openvino import OpenVINOEngine

        return OpenVINOEngine(model, threads)
    return TensorFlowEngine(name, model, checked_images)


class EngineInference:
    """The callable `compile_inference` returns for engine="litert", "openvino" or "measure".

    Attributes: `model` (the frozen copy every engine runs), `engine` (the engine asked for),
    `candidates` (the engines it may use), `threads`; `conversions` (per-shape LiteRT and OpenVINO
    conversions so far), `chosen` ({input shape: engine} of the shapes built now), and for the
    shapes "measure" timed `timings` ({shape: {engine: median ms}}) and `differences` ({shape:
    {engine: max abs difference from the model's outputs}}).
    """

    def __init__(
        self,
        model: keras.Model,
        engine: str,
        checked_images: Callable[[Any], Any],
        threads: int,
        engine_cache: str | os.PathLike | None,
    ) -> None:
        self.engine, self.threads = engine, threads
        # The choices file is checked first: a path holding a user's file is refused before any work.
        self._choices = ChoicesFile(engine_cache, model, threads) if engine == "measure" else None
        self.model = frozen_copy(model)
        self._checked_images = checked_images
        self.candidates = available_engines() if engine == "measure" else (engine,)
        self._engines = {
            name: _make_engine(name, self.model, threads, checked_images) for name in self.candidates
        }
        self._cache = ShapeCache()

    def __call__(self, images: Any) -> Any:
        images = self._checked_images(images)
        shape = tuple(int(d) for d in images.shape)
        built = self._cache.get(shape, lambda: self._build(shape, images))
        return built.run(images)

    def _build(self, shape: tuple[int, ...], images: Any) -> AutoChoice:
        if self._choices is None:
            return AutoChoice(self.engine, self._engines[self.engine].build(shape), {}, {})
        remembered = self._choices.lookup(shape)
        if remembered in self._engines:
            return AutoChoice(remembered, self._engines[remembered].build(shape), {}, {})
        reference = self.model(images, training=False)
        choice = fastest(list(self._engines.values()), shape, images, reference)
        self._choices.record(shape, choice.engine, choice.timings)
        return choice

    @property
    def conversions(self) -> int:
        return sum(engine.conversions for engine in self._engines.values())

    @property
    def chosen(self) -> dict[tuple[int, ...], str]:
        return {shape: built.engine for shape, built in self._cache.items()}

    @property
    def timings(self) -> dict[tuple[int, ...], dict[str, float]]:
        return {shape: built.timings for shape, built in self._cache.items() if built.timings}

    @property
    def differences(self) -> dict[tuple[int, ...], dict[str, float]]:
        return {shape: built.differences for shape, built in self._cache.items() if built.differences}


def compile_engine(
    model: keras.Model,
    engine: str,
    checked_images: Callable[[Any], Any],
    *,
    threads: int | None = None,
    engine_cache: str | os.PathLike | None = None,
) -> EngineInference:
    """`compile_inference(model, freeze_weights=True, engine=engine)`, its arguments checked by the
    caller (`keras_pvt.inference.checks.check_engine`)."""
    return EngineInference(model, engine, checked_images, threads or default_threads(), engine_cache)
