"""Anchors and box coder of the RetinaNet: equal to mmdet's (the fixture's anchors, mmdet's documented
`delta2bbox` example), in the head's output order, in NumPy and in traced graphs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from _detection_reference import SIZES, expected

from keras_pvt.detection import anchor_boxes, decode, encode, feature_sizes
from keras_pvt.detection.anchors import anchors_per_level, base_anchors, level_anchors_graph

pytestmark = pytest.mark.all_backends


def _size(case: str) -> tuple[int, int]:
    height, width = (int(v) for v in case.split("x"))
    return height, width


@pytest.mark.parametrize("case", SIZES)
def test_anchors_equal_mmdets_bit_for_bit(case: str) -> None:
    anchors = anchor_boxes(*_size(case))
    assert anchors.dtype == np.float32
    np.testing.assert_array_equal(anchors, expected(case, "anchors"))


@pytest.mark.parametrize("case", SIZES)
def test_feature_sizes_are_the_heads_and_count_its_outputs(case: str) -> None:
    sizes = feature_sizes(*_size(case))
    assert sizes == [tuple(int(v) for v in s) for s in expected(case, "feature_sizes")]
    assert sum(anchors_per_level(*_size(case))) == expected(case, "cls_logits").shape[1]


def test_anchor_order_is_level_then_row_major_then_base_anchor() -> None:
    anchors = anchor_boxes(97, 131)
    base = base_anchors(8)
    assert base.shape == (9, 4)
    # mmdet's base anchors: ratio-major (0.5, 1, 2), then octave scales 4, 4 * 2^(1/3), 4 * 2^(2/3).
    np.testing.assert_allclose(base[3], [-16, -16, 16, 16])
    np.testing.assert_allclose(base[0, 2] - base[0, 0], 8 * 4 / np.sqrt(0.5), rtol=1e-6)
    np.testing.assert_array_equal(anchors[:9], base)
    np.testing.assert_array_equal(anchors[9:18], base + np.float32([8, 0, 8, 0]))  # next column
    width0 = feature_sizes(97, 131)[0][1]
    np.testing.assert_array_equal(anchors[9 * width0 : 9 * width0 + 9], base + np.float32([0, 8, 0, 8]))


def test_sizes_round_up_at_every_stride() -> None:
    assert feature_sizes(97, 131) == [(13, 17), (7, 9), (4, 5), (2, 3), (1, 2)]
    assert feature_sizes(1, 1) == [(1, 1)] * 5


@pytest.mark.parametrize("size", [(0, 10), (10, -1), (1.5, 10), (True, 10)])
def test_bad_sizes_are_refused(size) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        anchor_boxes(*size)


def test_graph_anchors_equal_the_numpy_ones() -> None:
    graph = np.concatenate([keras.ops.convert_to_numpy(a) for a in level_anchors_graph(97, 131)])
    np.testing.assert_array_equal(graph, anchor_boxes(97, 131))


def test_decode_matches_mmdets_documented_example() -> None:
    # mmdet's `delta2bbox` docstring example (max_shape (32, 32)), printed to 4 decimals there.
    rois = np.float32([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [5, 5, 5, 5]])
    deltas = np.float32([[0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 2, -1], [0.7, -1.9, -0.5, 0.3]])
    want = [[0, 0, 1, 1], [0.1409, 0.1409, 2.8591, 2.8591], [0, 0.3161, 4.1945, 0.6839], [5, 5, 5, 5]]
    got = keras.ops.convert_to_numpy(decode(rois, deltas, max_shape=(32, 32)))
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_decode_clamps_log_sizes_and_clips_to_the_image() -> None:
    anchors = np.float32([[10, 10, 20, 20]])
    huge = keras.ops.convert_to_numpy(decode(anchors, np.float32([[0, 0, 50, 50]])))
    np.testing.assert_allclose(huge[0, 2] - huge[0, 0], 10 * 1000 / 16, rtol=1e-5)
    clipped = keras.ops.convert_to_numpy(decode(anchors, np.float32([[0, 0, 50, 50]]), max_shape=(30, 40)))
    np.testing.assert_allclose(clipped, [[0, 0, 40, 30]])


def test_encode_inverts_decode() -> None:
    rng = np.random.default_rng(0)
    anchors = anchor_boxes(64, 96)[:200]
    deltas = rng.normal(0, 0.5, (200, 4)).astype(np.float32)
    boxes = decode(anchors, deltas)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(encode(anchors, boxes)), deltas, atol=1e-4)
    batched = encode(anchors[None], keras.ops.expand_dims(boxes, 0))
    assert tuple(batched.shape) == (1, 200, 4)


def test_box_coder_runs_in_a_traced_graph() -> None:
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function tracing")
    import tensorflow as tf

    anchors = anchor_boxes(64, 64)
    deltas = np.zeros_like(anchors)
    traced = tf.function(lambda a, d, h: decode(a, d, (h, h)))
    got = traced(tf.constant(anchors), tf.constant(deltas), tf.constant(64))
    np.testing.assert_allclose(got.numpy(), np.clip(anchors, 0, 64), atol=1e-4)
