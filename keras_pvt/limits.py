"""Argument checks: the one place that refuses a value of the wrong type, outside its range or
beyond keras-pvt's sanity limits, for configs, layers, the segmenter and training options alike.

`integer` and `number` check a value against its valid range (training options, the segmenter's
options). A config or a `.keras` file may come from anyone: a value so large that building the
model would loop for hours or exhaust memory is refused too (`as_int` and the other rules of
`ARGUMENT_RULES`; `check_model_config` for a whole serialized model), naming the field, the value
and the limit. The limits are far above every published PVT-v2 (the largest, b5, is noted beside
each). Accepted values are returned as plain Python `bool`/`int`/`float`, so that `get_config()`
and JSON stay clean of NumPy scalars.
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
MAX_LAYER_WIDTH = max(MAX_NUM_CLASSES, MAX_HIDDEN_WIDTH)  # units/filters of a Keras layer in a config


Rule = Callable[[str, Any], Any]


def as_bool(name: str, value: Any) -> bool:
    """`value` as a `bool`; only `bool` and NumPy's bool are accepted (not "False", not 0)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"`{name}` must be True or False, got {_show(value)}.")


def integer(name: str, value: Any, minimum: int = 1, maximum: float = math.inf) -> int:
    """`value` as an `int` in [`minimum`, `maximum`]: any integral type (NumPy's too), never a bool,
    float or string. The ValueError starts with `name` and says the valid range."""
    if not is_integral(value) or not minimum <= value <= maximum:
        if maximum != math.inf:
            wanted = f"an integer in [{minimum}, {maximum}]"
        else:
            wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {wanted}, got {_show(value)}.")
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
    """`value` as a finite `float` in the range (`above`/`below`: the bound itself is excluded)."""
    inside = is_real(value) and math.isfinite(value) and minimum <= value <= maximum
    if not inside or (above and value == minimum) or (below and value == maximum):
        raise ValueError(
            f"{name} must be {_number_range(minimum, maximum, above, below)}, got {_show(value)}."
        )
    return float(value)


def _number_range(minimum: float, maximum: float, above: bool, below: bool) -> str:
    if maximum == math.inf:
        if minimum == 0 and above:
            return "a positive number (finite)"
        return f"a finite number {'>' if above else '>='} {minimum:g}"
    if minimum == -math.inf:
        return f"a finite number {'<' if below else '<='} {maximum:g}"
    return f"a finite number in {'(' if above else '['}{minimum:g}, {maximum:g}{')' if below else ']'}"


def as_int(name: str, value: Any, maximum: int, minimum: int = 1) -> int:
    """`value` as an `int` >= `minimum`, refused above the sanity limit `maximum`."""
    return _at_most(name, integer(f"`{name}`", value, minimum), maximum)


def as_positive_number(name: str, value: Any, maximum: float | None = None) -> int | float:
    """A finite number > 0 (at most `maximum`): an integral value stays `int`, others become `float`."""
    checked = number(f"`{name}`", value, 0, above=True)
    number_ = int(value) if is_integral(value) else checked
    return number_ if maximum is None else _at_most(name, number_, maximum)


def as_rate(name: str, value: Any) -> float:
    """A dropout-style rate in [0, 1), as a `float`."""
    try:
        return number(name, value, 0.0, 1.0, below=True)
    except ValueError:
        raise ValueError(f"`{name}` must be in [0, 1), got {_show(value)}.") from None


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


def block_parameters(dim: int, mlp_ratio: float, sr_ratio: int, linear: bool, qkv_bias: bool = True) -> int:
    """Parameters of one PVT-v2 block: two norms, q / kv / proj dense layers, the spatial reduction
    (conv and norm; the Li variant's 1x1 conv after pooling) and the MLP with its depthwise conv."""
    hidden = int(dim * mlp_ratio)
    if linear:
        reduction = dim * dim + dim + 2 * dim
    elif sr_ratio > 1:
        reduction = sr_ratio * sr_ratio * dim * dim + dim + 2 * dim
    else:
        reduction = 0
    attention = 3 * dim * dim + (3 * dim if qkv_bias else 0) + dim * dim + dim + reduction
    mlp = dim * hidden + hidden + 9 * hidden + hidden + hidden * dim + dim  # fc1, 3x3 depthwise, fc2
    return 2 * 2 * dim + attention + mlp


def stage_parameters(width_in: int, dim: int, depth: int, patch_size: int, block: int) -> int:
    """Parameters of one PVT-v2 stage on `width_in` channels: the patch embedding (conv and norm),
    `depth` blocks of `block` parameters each, and the stage norm."""
    return patch_size * patch_size * width_in * dim + dim + 2 * dim + depth * block + 2 * dim


def check_parameters(count: int, what: str) -> None:
    """Refuse `what` (e.g. "this config") if it would hold more than `MAX_PARAMETERS` weights."""
    if count > MAX_PARAMETERS:
        raise ValueError(
            f"{what} would have about {count:,} parameters, above the sanity limit of "
            f"{MAX_PARAMETERS:,} (b5 has 82 million): refused, it would exhaust memory. Use smaller "
            "widths, depths or ratios."
        )


# The size fields of Keras's built-in layers that a serialized model is checked for (keras-pvt's own
# layers are checked by `ARGUMENT_RULES`), with their limits.
KERAS_SIZE_RULES: dict[str, Rule] = {
    "units": int_rule(MAX_LAYER_WIDTH),
    "filters": int_rule(MAX_LAYER_WIDTH),
    "output_dim": int_rule(MAX_LAYER_WIDTH),
    "input_dim": int_rule(MAX_LAYER_WIDTH),
    "key_dim": int_rule(MAX_LAYER_WIDTH),
    "value_dim": int_rule(MAX_LAYER_WIDTH),
    "depth_multiplier": int_rule(MAX_LAYER_WIDTH),
    "num_heads": int_rule(MAX_HEADS),
}
KERAS_WINDOW_FIELDS = ("kernel_size", "pool_size", "strides", "dilation_rate", "size")
OUTPUT_WIDTH_FIELDS = ("units", "filters", "output_dim", "dim", "embed_dim", "out_dim")


def check_model_config(config: Any, what: str = "the model") -> None:
    """Refuse a serialized Keras model (a preset's config.json) beyond the sanity limits, unbuilt.

    Every layer (nested models too) has its size fields checked, and the model's weights are
    estimated from them and each layer's input width (followed through the graph), against
    `MAX_PARAMETERS`: a config asking for a 2-billion-unit Dense fails here, not by exhausting memory.
    """
    check_parameters(_model_parameters(config)[0], what)


def _model_parameters(entry: Any, input_width: int = 0) -> tuple[int, int]:
    """(estimated weights, output width) of a serialized layer or model `entry`."""
    if not _is_layer_entry(entry):
        return 0, input_width
    layers = entry["config"].get("layers")
    if not isinstance(layers, (list, tuple)):
        return _layer_parameters(entry, input_width)
    sequential = entry.get("class_name") == "Sequential"
    total, width, widths = 0, input_width, {}
    for layer in filter(_is_layer_entry, layers):
        width_in = width if sequential else _input_width(layer, widths)
        count, width = _model_parameters(layer, width_in)
        total += count
        widths[layer.get("name", layer["config"].get("name"))] = width
    return total, width


def _layer_parameters(entry: Mapping[str, Any], width_in: int) -> tuple[int, int]:
    """(estimated weights, output width) of one serialized layer; its size fields checked first."""
    config, kind = entry["config"], entry.get("class_name")
    checked = _checked_sizes(entry)
    if kind == "InputLayer":
        shape = config.get("batch_shape") or config.get("batch_input_shape") or [None]
        return 0, _width(shape[-1])
    return _estimate(kind, checked, max(width_in, 1))


def _checked_sizes(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The size fields of a serialized layer, checked (ValueError naming the layer and the field)."""
    config = entry["config"]
    owner = f"layer {config.get('name')!r} ({entry.get('class_name')})"
    sizes = {key: value for key, value in config.items() if key in KERAS_SIZE_RULES and value is not None}
    checked = {**vars(_checked(owner, sizes, KERAS_SIZE_RULES)), **_windows(owner, config)}
    if str(entry.get("module", "")).startswith("keras_pvt"):
        checked.update(vars(check_arguments(owner, config)))
    return checked


def _estimate(kind: Any, checked: Mapping[str, Any], width_in: int) -> tuple[int, int]:
    """(weights, output width) of a layer of class `kind` with the `checked` sizes on `width_in` channels."""
    window = math.prod(checked.get("kernel_size", (1,)))
    if kind == "PVTStage" and {"dim", "depth"} <= checked.keys():
        dim, patch = checked["dim"], checked.get("patch_size", 3)
        block = block_parameters(
            dim,
            checked.get("mlp_ratio", 4),
            checked.get("sr_ratio", 1),
            checked.get("linear", False),
            checked.get("qkv_bias", True),
        )
        return stage_parameters(width_in, dim, checked["depth"], patch, block), dim
    if "input_dim" in checked and "output_dim" in checked:  # Embedding
        return checked["input_dim"] * checked["output_dim"], checked["output_dim"]
    if "key_dim" in checked:  # MultiHeadAttention: query, key, value and output projections
        heads = checked.get("num_heads", 1) * max(checked["key_dim"], checked.get("value_dim", 0))
        return 4 * heads * width_in, width_in
    out = next((checked[key] for key in ("units", "filters") if key in checked), None)
    if out is not None:
        return window * width_in * out + out, out
    if "depth_multiplier" in checked:  # DepthwiseConv
        return window * width_in * checked["depth_multiplier"], width_in * checked["depth_multiplier"]
    return 0, next((checked[key] for key in OUTPUT_WIDTH_FIELDS if key in checked), width_in)


def _input_width(entry: Mapping[str, Any], widths: Mapping[str, int]) -> int:
    """The widest input of a functional layer: its inbound layers' widths or the recorded shapes."""
    found = []
    for tensor in _keras_tensors(entry.get("inbound_nodes", [])):
        history = tensor.get("keras_history") or [None]
        shape = tensor.get("shape") or [None]
        found.append(max(widths.get(history[0], 0) if isinstance(history[0], str) else 0, _width(shape[-1])))
    if entry.get("class_name") == "Concatenate":
        return sum(found)
    return max(found, default=0)


def _keras_tensors(node: Any) -> list[Mapping[str, Any]]:
    """The serialized Keras tensors (their ``config``: shape, keras_history) anywhere in `node`."""
    if isinstance(node, Mapping):
        if node.get("class_name") == "__keras_tensor__" and isinstance(node.get("config"), Mapping):
            return [node["config"]]
        return [tensor for value in node.values() for tensor in _keras_tensors(value)]
    if isinstance(node, (list, tuple)):
        return [tensor for value in node for tensor in _keras_tensors(value)]
    return []


def _windows(owner: str, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """The kernel, pool, stride, dilation and upsampling sizes of a layer config, checked."""
    windows = {}
    for key in KERAS_WINDOW_FIELDS:
        value = config.get(key)
        if value is None or isinstance(value, str):
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        try:
            windows[key] = tuple(as_int(f"{key}", v, MAX_IMAGE_SIZE) for v in values)
        except ValueError as error:
            raise ValueError(f"{owner}: {error}") from None
    return windows


def _checked(owner: str, values: Mapping[str, Any], rules: Mapping[str, Rule]) -> SimpleNamespace:
    checked = {}
    for name, value in values.items():
        try:
            checked[name] = rules[name](name, value)
        except ValueError as error:
            raise ValueError(f"{owner}: {error}") from None
    return SimpleNamespace(**checked)


def _is_layer_entry(entry: Any) -> bool:
    return isinstance(entry, Mapping) and isinstance(entry.get("config"), Mapping) and "class_name" in entry


def _width(value: Any) -> int:
    return int(value) if is_integral(value) and value > 0 else 0


def _at_most(name: str, value: Any, maximum: float) -> Any:
    if value > maximum:
        raise ValueError(
            f"`{name}` = {value} is above the sanity limit of {maximum}: refused, a value this large "
            "would exhaust memory or time."
        )
    return value


def is_integral(value: Any) -> bool:
    """An integer of any integral type (NumPy's too), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    """A real number of any type (NumPy's too), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _show(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:60] + "..."
    return f"{text} ({type(value).__name__})"
