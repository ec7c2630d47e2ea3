"""Keyword facades over options dataclasses: ``f(x, epochs=3)`` for ``f(x, run=RunOptions(epochs=3))``."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

Options = TypeVar("Options")


def replace_fields(caller: str, fields: dict[str, Any], *options: Options) -> tuple[Options, ...]:
    """Each of `options` (dataclass instances) with the `fields` named after its own fields
    replaced; a name no option has raises `TypeError`, as an unknown keyword argument would."""
    names = [{field.name for field in dataclasses.fields(option)} for option in options]
    unknown = sorted(set(fields).difference(*names))
    if unknown:
        known = ", ".join(sorted(set().union(*names)))
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}; options: {known}.")
    return tuple(
        dataclasses.replace(option, **{k: v for k, v in fields.items() if k in own})
        for option, own in zip(options, names)
    )
