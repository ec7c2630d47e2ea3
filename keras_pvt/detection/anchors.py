"""mmdet's RetinaNet anchors (`AnchorGenerator`) for an image size, in the order of the head's outputs.

The order is the one of the flattened head outputs: level 0 ... 4 (strides 8 ... 128), then the
level's H x W locations row-major, then mmdet's base anchors (ratio-major: for each ratio 0.5, 1, 2
the three octave scales). Values are computed in float32 with mmdet's operation order, so they equal
its anchors bit for bit. `anchor_boxes` is NumPy (for targets and tests), `level_anchors_graph` the
same arithmetic in `keras.ops` for sizes known only at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from keras import ops

STRIDES = (8, 16, 32, 64, 128)
OCTAVE_BASE_SCALE = 4
SCALES_PER_OCTAVE = 3
RATIOS = (0.5, 1.0, 2.0)
ANCHORS_PER_LOCATION = SCALES_PER_OCTAVE * len(RATIOS)
# (kernel, stride, padding) of every downsampling conv from the image to each level: the backbone's
# overlapping patch embeddings (7x7/4 pad 3, then 3x3/2 pad 1 for stages 2-4), then the neck's
# extra P6 and P7 convs (3x3/2 pad 1). Level 0 (stride 8) is the output of the second one.
DOWNSAMPLING = ((7, 4, 3), (3, 2, 1), (3, 2, 1), (3, 2, 1), (3, 2, 1), (3, 2, 1))
FIRST_LEVEL = 1


def conv_output_size(size: Any, kernel: int, stride: int, padding: int) -> Any:
    """PyTorch's conv output length ``(size + 2 padding - kernel) // stride + 1`` (ints or tensors)."""
    return (size + 2 * padding - kernel) // stride + 1


def feature_sizes(
    image_height: int, image_width: int, num_levels: int = len(STRIDES)
) -> list[tuple[int, int]]:
    """(height, width) of each pyramid level for an image size (level 0 at stride 8).

    Each is ``ceil(size / stride)``: the patch embeddings and the extra convs round up.
    """
    _check_size(image_height, image_width)
    sizes, height, width = [], int(image_height), int(image_width)
    for index, (kernel, stride, padding) in enumerate(DOWNSAMPLING):
        height = conv_output_size(height, kernel, stride, padding)
        width = conv_output_size(width, kernel, stride, padding)
        if index >= FIRST_LEVEL:
            sizes.append((height, width))
    return sizes[:num_levels]


def base_anchors(
    stride: int,
    octave_base_scale: float = OCTAVE_BASE_SCALE,
    scales_per_octave: int = SCALES_PER_OCTAVE,
    ratios: Sequence[float] = RATIOS,
) -> np.ndarray:
    """mmdet's `gen_single_level_base_anchors` (centre 0, scale-major): float32 (A, 4) xyxy."""
    octave_scales = np.array([2 ** (i / scales_per_octave) for i in range(scales_per_octave)])
    scales = (octave_scales * octave_base_scale).astype(np.float32)
    h_ratios = np.sqrt(np.asarray(ratios, np.float32))
    w_ratios = np.float32(1.0) / h_ratios
    size = np.float32(stride)
    ws = (size * w_ratios[:, None] * scales[None, :]).reshape(-1)
    hs = (size * h_ratios[:, None] * scales[None, :]).reshape(-1)
    half, zero = np.float32(0.5), np.float32(0.0)
    return np.stack([zero - half * ws, zero - half * hs, zero + half * ws, zero + half * hs], axis=-1)


def num_base_anchors(scales_per_octave: int = SCALES_PER_OCTAVE, ratios: Sequence[float] = RATIOS) -> int:
    """Anchors per location (9 for RetinaNet)."""
    return scales_per_octave * len(ratios)


def anchor_boxes(
    image_height: int,
    image_width: int,
    strides: Sequence[int] = STRIDES,
    octave_base_scale: float = OCTAVE_BASE_SCALE,
    scales_per_octave: int = SCALES_PER_OCTAVE,
    ratios: Sequence[float] = RATIOS,
) -> np.ndarray:
    """Every anchor of an image, float32 (N, 4) xyxy in input pixels, in the head's output order."""
    levels = []
    for stride, (height, width) in zip(strides, feature_sizes(image_height, image_width, len(strides))):
        base = base_anchors(stride, octave_base_scale, scales_per_octave, ratios)
        shift_x = np.arange(width, dtype=np.float32) * np.float32(stride)
        shift_y = np.arange(height, dtype=np.float32) * np.float32(stride)
        xx, yy = np.tile(shift_x, height), np.repeat(shift_y, width)
        shifts = np.stack([xx, yy, xx, yy], axis=-1)
        levels.append((base[None, :, :] + shifts[:, None, :]).reshape(-1, 4))
    return np.concatenate(levels, axis=0)


def anchors_per_level(image_height: int, image_width: int, strides: Sequence[int] = STRIDES) -> list[int]:
    """How many anchors each level contributes (its H x W x 9)."""
    per_location = num_base_anchors()
    return [h * w * per_location for h, w in feature_sizes(image_height, image_width, len(strides))]


def level_anchors_graph(image_height: Any, image_width: Any, strides: Sequence[int] = STRIDES) -> list[Any]:
    """Per level, its anchors (H x W x 9, 4) float32 in `keras.ops`, for sizes known at run time.

    The same values as `anchor_boxes` (concatenated, they are equal), from scalar int tensors.
    """
    out = []
    height, width = image_height, image_width
    for index, (kernel, stride, padding) in enumerate(DOWNSAMPLING[: FIRST_LEVEL + len(strides)]):
        height = conv_output_size(height, kernel, stride, padding)
        width = conv_output_size(width, kernel, stride, padding)
        if index < FIRST_LEVEL:
            continue
        level_stride = strides[index - FIRST_LEVEL]
        base = ops.convert_to_tensor(base_anchors(level_stride))
        step = float(level_stride)
        shift_x = ops.cast(ops.arange(width), "float32") * step
        shift_y = ops.cast(ops.arange(height), "float32") * step
        xx = ops.reshape(ops.tile(ops.expand_dims(shift_x, 0), [height, 1]), (-1,))
        yy = ops.reshape(ops.tile(ops.expand_dims(shift_y, 1), [1, width]), (-1,))
        shifts = ops.stack([xx, yy, xx, yy], axis=-1)
        out.append(ops.reshape(ops.expand_dims(base, 0) + ops.expand_dims(shifts, 1), (-1, 4)))
    return out


def _check_size(image_height: Any, image_width: Any) -> None:
    for name, value in (("image_height", image_height), ("image_width", image_width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
