"""The options dataclasses' fields are real keyword arguments of the functions that take them."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from keras_pvt._keywords import options_from
from keras_pvt.export.tflite import TFLiteOptions, VerifyOptions, convert_to_tflite
from keras_pvt.training.detection import train_detection
from keras_pvt.training.detection_options import (
    DETECTION_EPOCHS,
    DETECTION_OUTPUT,
    DetectionDataOptions,
    DetectorOptions,
)
from keras_pvt.training.options import DataOptions, RunOptions
from keras_pvt.training.segmentation import train_segmentation
from keras_pvt.training.segmentation_options import (
    SEGMENTATION_OUTPUT,
    SegmentationDataOptions,
    SegmenterOptions,
)
from keras_pvt.training.train import train

CASES = [
    (convert_to_tflite, TFLiteOptions()),
    (convert_to_tflite, VerifyOptions()),
    (train, DataOptions()),
    (train, RunOptions()),
    (train_segmentation, SegmentationDataOptions()),
    (train_segmentation, RunOptions(output=SEGMENTATION_OUTPUT)),
    (train_segmentation, SegmenterOptions()),
    (train_detection, DetectionDataOptions()),
    (train_detection, RunOptions(output=DETECTION_OUTPUT, epochs=DETECTION_EPOCHS)),
    (train_detection, DetectorOptions()),
]


@pytest.mark.parametrize(
    ("function", "defaults"), CASES, ids=lambda c: getattr(c, "__name__", type(c).__name__)
)
def test_every_field_is_a_keyword_with_the_options_default(function, defaults):
    parameters = inspect.signature(function).parameters
    assert not any(p.kind is p.VAR_KEYWORD for p in parameters.values())  # nothing hidden in **kwargs
    for field in dataclasses.fields(defaults):
        parameter = parameters[field.name]
        assert parameter.kind is parameter.KEYWORD_ONLY, field.name
        assert parameter.default == getattr(defaults, field.name), field.name


def _arguments(**given):
    """`train`'s arguments as its ``locals()`` holds them when called with `given`."""
    return {name: p.default for name, p in inspect.signature(train).parameters.items()} | given


def test_fields_by_name_make_the_options_or_replace_those_given():
    assert options_from(train, _arguments(epochs=3), RunOptions) == RunOptions(epochs=3)
    given = RunOptions(epochs=7, seed=5, weights="w.h5")
    assert options_from(train, _arguments(), RunOptions, given) is given  # none given by name
    assert options_from(train, _arguments(epochs=2), RunOptions, given) == dataclasses.replace(
        given, epochs=2
    )
    assert options_from(train, _arguments(seed=None), RunOptions, given).seed is None
    with pytest.raises(ValueError, match="epochs"):
        options_from(train, _arguments(epochs=0), RunOptions)  # the dataclass still validates


def test_an_unknown_keyword_is_refused_by_python():
    with pytest.raises(TypeError, match="unexpected keyword argument 'crop_scale'"):
        train_segmentation("b0", crop_scale=(0.5, 1.0))
    with pytest.raises(TypeError, match="unexpected keyword argument 'quantise'"):
        convert_to_tflite(None, "m.tflite", quantise="int8")
