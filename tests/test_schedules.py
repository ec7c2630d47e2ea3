"""`WarmupCosine` and `PolyDecay` are Keras' `CosineDecay` and `PolynomialDecay`: the same values as
the formulas they replaced at every step, configs saved before that change still load, and mmcv's
warmup, which `PolynomialDecay` lacks, is the one part of ours left. `StepDecay` is Keras'
`PiecewiseConstantDecay` with that warmup: mmcv's ``step`` policy."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from keras_pvt.schedules import PolyDecay, StepDecay, WarmupCosine
from keras_pvt.segmentation.losses import SegmentationCrossEntropy

pytestmark = pytest.mark.all_backends

COSINES = [  # peak_lr, total_steps, warmup_steps, warmup_lr, min_lr
    (1e-3, 200, 50, 1e-6, 1e-5),
    (5e-4, 37, 0, 0.0, 0.0),
    (2e-3, 10, 10, 1e-4, 1e-6),  # warmup over the whole run
    (1e-3, 1, 0, 0.0, 1e-3),  # min_lr == peak: flat
]
POLYS = [  # peak_lr, total_steps, power, min_lr, warmup_steps, warmup_ratio
    (4e-4, 40, 0.9, 0.0, 0, 1e-6),
    (2e-4, 40, 0.9, 1e-6, 10, 0.1),
    (1e-2, 13, 2.0, 1e-4, 13, 1e-6),
]


def _old_warmup_cosine(step, peak_lr, total_steps, warmup_steps, warmup_lr, min_lr):
    """The hand-written formula `WarmupCosine` had before it became Keras' `CosineDecay`."""
    if step < warmup_steps:
        return warmup_lr + (peak_lr - warmup_lr) * step / max(warmup_steps, 1)
    progress = min(max((step - warmup_steps) / max(total_steps - warmup_steps, 1), 0.0), 1.0)
    return min_lr + 0.5 * (peak_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def _mmcv_poly(step, peak_lr, total_steps, power, min_lr, warmup_steps, warmup_ratio):
    """mmcv's ``PolyLrUpdaterHook`` with ``warmup="linear"`` (by_epoch=False), in float64."""
    regular = (peak_lr - min_lr) * (1.0 - min(step, total_steps) / total_steps) ** power + min_lr
    if step < warmup_steps:
        return regular * (1.0 - (1.0 - step / warmup_steps) * (1.0 - warmup_ratio))
    return regular


def _steps(total_steps, warmup_steps):
    """Every phase boundary and about 20 steps between (each call is a new trace on eager JAX)."""
    around = {0, 1, warmup_steps - 1, warmup_steps, warmup_steps + 1, total_steps - 1, total_steps}
    spread = set(range(0, total_steps + 3, max(1, total_steps // 20)))
    return sorted(step for step in around | spread | {total_steps + 2} if step >= 0)


def _values(schedule, steps):
    return np.array([float(ops.convert_to_numpy(schedule(step))) for step in steps])


@pytest.mark.parametrize("args", COSINES)
def test_warmup_cosine_is_keras_cosine_decay_with_the_old_values(args):
    schedule = WarmupCosine(*args)
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    steps = _steps(args[1], args[2])
    expected = [_old_warmup_cosine(step, *args) for step in steps]
    np.testing.assert_allclose(_values(schedule, steps), expected, rtol=2e-6, atol=1e-10)


@pytest.mark.parametrize("args", POLYS)
def test_poly_decay_is_keras_polynomial_decay_with_mmcv_warmup(args):
    schedule = PolyDecay(*args)
    assert isinstance(schedule, keras.optimizers.schedules.PolynomialDecay)
    steps = _steps(args[1], args[4])
    expected = [_mmcv_poly(step, *args) for step in steps]
    np.testing.assert_allclose(_values(schedule, steps), expected, rtol=2e-6, atol=1e-10)


def test_keras_polynomial_decay_has_no_warmup_so_ours_adds_it():
    """Without warmup PolyDecay is exactly Keras' PolynomialDecay; with it, Keras' lacks the factor."""
    peak, total, power, min_lr = 2e-4, 40, 0.9, 1e-6
    keras_poly = keras.optimizers.schedules.PolynomialDecay(peak, total, min_lr, power=power)
    steps = range(total + 2)
    np.testing.assert_array_equal(
        _values(PolyDecay(peak, total, power, min_lr), steps), _values(keras_poly, steps)
    )
    warm = _values(PolyDecay(peak, total, power, min_lr, warmup_steps=10, warmup_ratio=0.1), range(10))
    assert np.all(warm < _values(keras_poly, range(10)) * 0.99)


OLD_CONFIGS = {  # as `keras.saving.serialize_keras_object` wrote them into trained models
    "WarmupCosine": {
        "peak_lr": 0.001,
        "total_steps": 200,
        "warmup_steps": 50,
        "warmup_lr": 1e-06,
        "min_lr": 1e-05,
    },
    "PolyDecay": {
        "peak_lr": 0.0002,
        "total_steps": 40,
        "power": 0.9,
        "min_lr": 0.0,
        "warmup_steps": 10,
        "warmup_ratio": 0.1,
    },
}


@pytest.mark.parametrize("name", sorted(OLD_CONFIGS))
def test_configs_saved_before_the_change_load_inside_an_optimizer(name):
    config = OLD_CONFIGS[name]
    saved = {
        "module": "keras_pvt.schedules",
        "class_name": name,
        "config": config,
        "registered_name": f"keras_pvt>{name}",
    }
    optimizer = keras.optimizers.AdamW(learning_rate=0.1).get_config()
    optimizer["learning_rate"] = saved
    loaded = keras.optimizers.AdamW.from_config(optimizer)
    schedule = loaded._learning_rate
    assert type(schedule).__name__ == name and schedule.get_config() == config
    reference = _old_warmup_cosine if name == "WarmupCosine" else _mmcv_poly
    steps = _steps(config["total_steps"], config["warmup_steps"])
    expected = [reference(step, *config.values()) for step in steps]
    np.testing.assert_allclose(_values(schedule, steps), expected, rtol=2e-6, atol=1e-10)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert again.get_config() == config


FIXTURES = Path(__file__).parent / "fixtures"
SAVED_MODELS = {"WarmupCosine": "saved_warmup_cosine.keras", "PolyDecay": "saved_poly_decay.keras"}


@pytest.mark.parametrize("name", sorted(OLD_CONFIGS))
def test_models_saved_before_the_change_load(name):
    """Files written by the code before (tests/fixtures/make_saved_before_keras_schedules.py)."""
    model = keras.saving.load_model(FIXTURES / SAVED_MODELS[name], safe_mode=True)
    schedule = model.optimizer._learning_rate
    assert type(schedule).__name__ == name and schedule.get_config() == OLD_CONFIGS[name]
    assert int(ops.convert_to_numpy(model.optimizer.iterations)) == 3
    reference = _old_warmup_cosine if name == "WarmupCosine" else _mmcv_poly
    np.testing.assert_allclose(
        float(ops.convert_to_numpy(model.optimizer.learning_rate)),
        reference(3, *OLD_CONFIGS[name].values()),
        rtol=2e-6,
    )
    if name == "PolyDecay":
        assert isinstance(model.loss, SegmentationCrossEntropy) and model.loss.ignore_label == 7
        masks = np.full((2, 4, 4), 7, "int32")
        masks[:, 0] = 1
        loss = model.evaluate(np.ones((2, 4, 4, 3), "float32"), masks, verbose=0)
        assert np.isfinite(loss) and loss > 0


def test_schedules_follow_a_step_variable_inside_a_compiled_train_step():
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    schedule = WarmupCosine(peak_lr=0.1, total_steps=6, warmup_steps=2, warmup_lr=0.0, min_lr=0.01)
    optimizer = keras.optimizers.SGD(learning_rate=schedule)
    model.compile(optimizer, loss="mse", jit_compile=keras.backend.backend() != "torch")
    model.fit(np.ones((8, 2), "float32"), np.ones((8, 1), "float32"), batch_size=2, epochs=1, verbose=0)
    assert int(ops.convert_to_numpy(optimizer.iterations)) == 4
    expected = _old_warmup_cosine(4, 0.1, 6, 2, 0.0, 0.01)
    np.testing.assert_allclose(float(ops.convert_to_numpy(optimizer.learning_rate)), expected, rtol=1e-6)


@pytest.mark.parametrize("build", [WarmupCosine, PolyDecay])
def test_bad_steps_are_refused(build):
    build(1e-3, total_steps=5, warmup_steps=5)  # accepted
    for total, warmup in ((0, 0), (5, 6), (5, -1)):
        with pytest.raises(ValueError, match="total_steps >= 1 and 0 <= warmup_steps <= total_steps"):
            build(1e-3, total_steps=total, warmup_steps=warmup)


def test_warmup_cosine_needs_a_positive_peak():
    with pytest.raises(ValueError, match="peak_lr > 0"):
        WarmupCosine(0.0, total_steps=10)


STEPS = [  # peak_lr, decay_steps, factor, warmup_steps, warmup_ratio
    (1e-4, (8, 11), 0.1, 5, 1e-3),
    (2e-3, (0, 3, 3), 0.5, 0, 1e-3),  # a decay from the first step, two at once
    (1e-3, (), 0.1, 4, 0.1),  # warmup only
]


def _mmcv_step(step, peak_lr, decay_steps, factor, warmup_steps, warmup_ratio):
    """mmcv's ``StepLrUpdaterHook`` (its decays as 0-based steps) with ``warmup="linear"``."""
    regular = peak_lr * factor ** sum(step >= s for s in decay_steps)
    if step < warmup_steps:
        return regular * (1.0 - (1.0 - step / warmup_steps) * (1.0 - warmup_ratio))
    return regular


@pytest.mark.parametrize("args", STEPS)
def test_step_decay_is_keras_piecewise_constant_with_mmcv_warmup(args):
    schedule = StepDecay(*args)
    assert isinstance(schedule, keras.optimizers.schedules.PiecewiseConstantDecay)
    steps = range(14)
    expected = [_mmcv_step(step, *args) for step in steps]
    np.testing.assert_allclose(_values(schedule, steps), expected, rtol=2e-6, atol=1e-12)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert type(again) is StepDecay and again.get_config() == schedule.get_config()
    with pytest.raises(ValueError, match="increasing decay_steps"):
        StepDecay(1e-3, (5, 2))
