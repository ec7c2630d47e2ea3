"""Type rules and sanity limits for architecture values, shared by `PVTV2Config` and the layers.

A config or a `.keras` file may come from anyone: a value of the wrong type, or one so large that
building the model would loop for hours or exhaust memory, is refused with a `ValueError` that
names the field, the value and, for sizes, the limit. The limits are far above every published
PVT-v2 (the largest, b5, is noted beside each). Accepted values are returned as plain Python
`bool`/`int`/`float`, so that `get_config()` and JSON stay clean of NumPy scalars.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

MAX_STAGES = 8  # b5: 4
MAX_DEPTH = 1000  # blocks per stage; b5: 40
MAX_WIDTH = 65536  # channels of a stage or of the input; b5: 512
MAX_HIDDEN_WIDTH = 2**20  # MLP hidden width; b5: 2048
MAX_HEADS = 1024  # b5: 8
MAX_MLP_RATIO = 64  # b5: 8
MAX_SR_RATIO = 64  # spatial-reduction kernel and stride; b5: 8
MAX_PATCH_SIZE = 64  # patch-embedding kernel and stride; b5: 7 and 4
MAX_NUM_CLASSES = 1_000_000  # b5: 1000
MAX_IMAGE_SIZE = 16384  # a nominal `img_size`, a check's minimum, a pooling output size
MAX_PARAMETERS = 2_000_000_000  # weights of a whole config or of one layer; b5: 82 million


Rule = Callable[[str, Any], Any]


def as_bool(name: str, value: Any) -> bool:
    """`value` as a `bool`; only `bool` and NumPy's bool are accepted (not "False", not 0)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"`{name}` must be True or False, got {_show(value)}.")


def as_int(name: str, value: Any, maximum: int, minimum: int = 1) -> int:
    """`value` as an `int` in [minimum, maximum]: any integral type (NumPy's too), never a bool or float."""
    if not _is_integral(value) or value < minimum:
        wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"`{name}` must be {wanted}, got {_show(value)}.")
    return _at_most(name, int(value), maximum)


def as_positive_number(name: str, value: Any, maximum: float | None = None) -> int | float:
    """A finite number > 0 (at most `maximum`): an integral value stays `int`, others become `float`."""
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a positive number (finite), got {_show(value)}.")
    number = int(value) if _is_integral(value) else float(value)
    return number if maximum is None else _at_most(name, number, maximum)


def as_rate(name: str, value: Any) -> float:
    """A dropout-style rate in [0, 1), as a `float`."""
    if not _is_real(value) or not 0.0 <= value < 1.0:  # NaN fails both comparisons
        raise ValueError(f"`{name}` must be in [0, 1), got {_show(value)}.")
    return float(value)


def as_rates(name: str, value: Any) -> float | list[float] | None:
    """A rate, a sequence of rates (one per block, as lists), or None (the layer's default)."""
    if value is None:
        return None
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [as_rate(f"{name}[{i}]", rate) for i, rate in enumerate(value)]
    return as_rate(name, value)


def as_scale(name: str, value: Any) -> float | None:
    """None (the default scale) or a positive finite number."""
    if value is None:
        return None
    try:
        return as_positive_number(name, value)
    except ValueError:
        raise ValueError(
            f"`{name}` must be None or a positive number (finite), got {_show(value)}."
        ) from None


def int_rule(maximum: int, minimum: int = 1) -> Rule:
    """The rule "an integer in [minimum, maximum]"."""
    return lambda name, value: as_int(name, value, maximum, minimum)


# The rule of every architecture argument of the layers, by argument name.
ARGUMENT_RULES: dict[str, Rule] = {
    "dim": int_rule(MAX_WIDTH),
    "embed_dim": int_rule(MAX_WIDTH),
    "out_dim": int_rule(MAX_WIDTH),
    "hidden_dim": int_rule(MAX_HIDDEN_WIDTH),
    "num_heads": int_rule(MAX_HEADS),
    "depth": int_rule(MAX_DEPTH),
    "sr_ratio": int_rule(MAX_SR_RATIO),
    "patch_size": int_rule(MAX_PATCH_SIZE),
    "stride": int_rule(MAX_PATCH_SIZE),
    "min_size": int_rule(MAX_IMAGE_SIZE),
    "mlp_ratio": lambda name, value: as_positive_number(name, value, MAX_MLP_RATIO),
    "linear": as_bool,
    "qkv_bias": as_bool,
    "qk_scale": as_scale,
    "drop": as_rate,
    "attn_drop": as_rate,
    "proj_drop": as_rate,
    "drop_path": as_rates,
}


def check_arguments(owner: str, arguments: Mapping[str, Any]) -> SimpleNamespace:
    """The `arguments` that have a rule in `ARGUMENT_RULES`, checked, as plain Python values.

    Layers call it with their constructor's ``locals()``. The `ValueError` for a bad value starts
    with `owner` (the layer class): "PVTStage: `depth` = 1000000 is above the sanity limit of 1000 ...".
    """
    checked = {}
    for name, value in arguments.items():
        if name in ARGUMENT_RULES:
            try:
                checked[name] = ARGUMENT_RULES[name](name, value)
            except ValueError as error:
                raise ValueError(f"{owner}: {error}") from None
    return SimpleNamespace(**checked)


def block_parameters(dim: int, mlp_ratio: float, sr_ratio: int, linear: bool) -> int:
    """Weights of one PVT-v2 block (projections, reduction conv, MLP), biases and norms left out."""
    hidden = int(dim * mlp_ratio)
    reduction = dim * dim if linear else (sr_ratio * sr_ratio * dim * dim if sr_ratio > 1 else 0)
    return 4 * dim * dim + reduction + 2 * dim * hidden + 9 * hidden


def check_parameters(count: int, what: str) -> None:
    """Refuse `what` (e.g. "this config") if it would hold more than `MAX_PARAMETERS` weights."""
    if count > MAX_PARAMETERS:
        raise ValueError(
            f"{what} would have about {count:,} parameters, above the sanity limit of "
            f"{MAX_PARAMETERS:,} (b5 has 82 million): refused, it would exhaust memory. Use smaller "
            "widths, depths or ratios."
        )


def _at_most(name: str, value: Any, maximum: float) -> Any:
    if value > maximum:
        raise ValueError(
            f"`{name}` = {value} is above the sanity limit of {maximum}: refused, a value this large "
            "would exhaust memory or time."
        )
    return value


def _is_integral(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _show(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:60] + "..."
    return f"{text} ({type(value).__name__})"
