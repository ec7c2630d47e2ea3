"""Options dataclasses filled from a function's own keyword arguments, which users and IDEs see.

A function such as ``train(variant, *, data=None, epochs=10, ...)`` lists every field of its options
dataclasses as a keyword argument; `options_from` gathers them into the validated dataclass.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

Options = TypeVar("Options")


def options_from(
    function: Callable[..., Any],
    arguments: Mapping[str, Any],
    cls: type[Options],
    given: Options | None = None,
) -> Options:
    """`cls` made from the `arguments` of `function` (its ``locals()``) named after `cls`'s fields;
    with `given`, that instance with only the fields passed other than their default replaced."""
    names = [field.name for field in dataclasses.fields(cls)]
    if given is None:
        return cls(**{name: arguments[name] for name in names})
    parameters = inspect.signature(function).parameters
    changed = {name: arguments[name] for name in names if _differs(arguments[name], parameters[name].default)}
    return dataclasses.replace(given, **changed) if changed else given


def _differs(value: Any, default: Any) -> bool:
    return value is not default and (type(value) is not type(default) or bool(value != default))
