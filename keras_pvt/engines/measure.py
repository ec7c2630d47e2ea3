"""engine="measure": on a new input shape, build, check and time every candidate engine; keep the fastest.

Each candidate's first (untimed) call on the caller's images, which holds XLA's compilation, is
compared with the frozen model's own eager outputs: a candidate further than `AUTO_TOLERANCE` (times
the outputs' scale) from them is left out with a warning, so a faulty conversion is never picked.
The rest then run alternately, `AUTO_ROUNDS` timed rounds in a rotating order, so that a burst of
load on a shared machine falls on all of them; the lowest median wins. Every candidate of a shape is
built at once, so the first call of a shape costs every conversion and compilation, and its peak
memory holds them all; the losers are then dropped.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

AUTO_ROUNDS = 5
# Largest max-abs difference from the model's outputs, times max(1, max |output|), a candidate may
# have (float32 round-off is far below).
AUTO_TOLERANCE = 1e-3


@dataclasses.dataclass(frozen=True)
class AutoChoice:
    """The engine kept for one shape, its runner, and what chose it (median ms, max abs difference)."""

    engine: str
    run: Any
    timings: dict[str, float]
    differences: dict[str, float]


def _arrays(outputs: Any) -> list[np.ndarray]:
    return [np.asarray(value) for value in tf.nest.flatten(outputs)]


def max_abs_difference(outputs: Any, reference: list[np.ndarray]) -> float:
    """The largest absolute difference between `outputs` and the reference arrays (inf if the
    structure differs or a value is not finite)."""
    arrays = _arrays(outputs)
    if len(arrays) != len(reference) or any(a.shape != r.shape for a, r in zip(arrays, reference)):
        return float("inf")
    worst = max(float(np.max(np.abs(a - r))) for a, r in zip(arrays, reference))
    return worst if np.isfinite(worst) else float("inf")


def build_candidates(engines: Sequence[Any], shape: tuple[int, ...]) -> dict[str, Any]:
    """Each engine's runner for `shape`; an engine that fails to build is left out with a warning."""
    runners = {}
    for engine in engines:
        try:
            runners[engine.name] = engine.build(shape)
        except Exception as error:  # one engine's conversion failing must not stop the others
            _leave_out(engine.name, shape, f"it could not be built ({type(error).__name__}: {error})")
    return runners


def time_candidates(runners: dict[str, Any], images: Any, rounds: int = AUTO_ROUNDS) -> dict[str, float]:
    """Median milliseconds of one call of each (warmed-up) runner on `images`, measured alternately."""
    names = list(runners)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            runners[name](images)
            samples[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(values) for name, values in samples.items()}


def fastest(engines: Sequence[Any], shape: tuple[int, ...], images: Any, reference: Any) -> AutoChoice:
    """The fastest of `engines` on `images` of `shape` among those whose outputs match `reference`
    (the model's outputs on `images`)."""
    expected = _arrays(reference)
    scale = max([1.0] + [float(np.max(np.abs(r))) for r in expected if r.size])
    runners, differences = {}, {}
    for name, run in build_candidates(engines, shape).items():
        differences[name] = max_abs_difference(run(images), expected)  # also the warm-up call
        if differences[name] <= AUTO_TOLERANCE * scale:
            runners[name] = run
        else:
            _leave_out(name, shape, f"its outputs differ from the model's by {differences[name]:.3g}")
    if not runners:
        raise RuntimeError(f"engine='measure': no engine could run input shape {shape} (warnings above).")
    timings = time_candidates(runners, images)
    name = min(timings, key=timings.__getitem__)
    return AutoChoice(name, runners[name], timings, differences)


def _leave_out(name: str, shape: tuple[int, ...], why: str) -> None:
    warnings.warn(
        f"engine='measure' leaves the {name!r} engine out for input shape {shape}: {why}.",
        RuntimeWarning,
        stacklevel=4,
    )
