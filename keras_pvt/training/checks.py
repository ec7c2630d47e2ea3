"""Argument checks for training runs (`DataOptions`, `RunOptions`, `Recipe`): a bad value is refused
before any work, with the valid range."""

from __future__ import annotations

import math
import numbers
from typing import Any


def integer(name: str, value: Any, minimum: int = 1, maximum: float = math.inf) -> int:
    """`value` as an int in [`minimum`, `maximum`] (numpy integers too; bools, floats, strings refused)."""
    valid = f"an integer {_range(minimum, maximum, False, False)}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be {valid}, got {value!r}.")
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be {valid}, got {value}.")
    return int(value)


def number(
    name: str,
    value: Any,
    minimum: float = -math.inf,
    maximum: float = math.inf,
    *,
    above: bool = False,
    below: bool = False,
) -> float:
    """`value` as a finite float in the range (`above`/`below`: the bound itself is excluded)."""
    valid = f"a finite number {_range(minimum, maximum, above, below)}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {valid}, got {value!r}.")
    value = float(value)
    outside = value < minimum or value > maximum or (above and value == minimum)
    if not math.isfinite(value) or outside or (below and value == maximum):
        raise ValueError(f"{name} must be {valid}, got {value}.")
    return value


def _range(minimum: float, maximum: float, above: bool, below: bool) -> str:
    if maximum == math.inf:
        return f"{'>' if above else '>='} {minimum:g}"
    if minimum == -math.inf:
        return f"{'<' if below else '<='} {maximum:g}"
    return f"in {'(' if above else '['}{minimum:g}, {maximum:g}{')' if below else ']'}"
