"""The image sizes the folder checks read from file headers (`seg_folder.image_height_width`) are the
sizes TensorFlow reads and decodes: JPEGs of every kind TensorFlow writes, headers pushed past the
first 64 KiB by large EXIF/APP segments, PNGs; unreadable headers give None. Why the hand-written
JPEG walk is kept over `tf.io.extract_jpeg_shape`: it stops at the frame header, where TensorFlow's
needs every segment up to the scan (and so, often, the whole file; the cost is in
benchmarks/results/folder_checks.md)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import tensorflow as tf

from keras_pvt.data import seg_folder
from keras_pvt.data.seg_folder import image_height_width

FIRST_READ = 1 << 16  # what image_height_width reads before falling back to the whole file


def _segment(marker: int, size: int) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", size + 2) + bytes(size)


def _frame_end(jpeg: bytes) -> int:
    """The offset just past the start-of-frame segment of a JPEG TensorFlow wrote."""
    start = min(i for i in (jpeg.find(b"\xff\xc0"), jpeg.find(b"\xff\xc2")) if i > 0)
    return start + 2 + struct.unpack(">H", jpeg[start + 2 : start + 4])[0]


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_sizes_are_tensorflows(tmp_path, rng, progressive, channels):
    for height, width in [(1, 1), (24, 32), (513, 683), (7, 1999)]:
        pixels = rng.integers(0, 255, (height, width, channels), dtype=np.uint8)
        encoded = tf.io.encode_jpeg(pixels, progressive=progressive, optimize_size=progressive).numpy()
        # EXIF and comment segments before the frame header: 100 KiB, past the first read
        exif = encoded[:2] + _segment(0xE1, 60000) + _segment(0xFE, 40000) + encoded[2:]
        for name, data in (("plain.jpg", encoded), ("exif.jpg", exif)):
            path = tmp_path / name
            path.write_bytes(data)
            decoded = tuple(tf.io.decode_jpeg(data).shape[:2])
            read = tuple(tf.io.extract_jpeg_shape(data).numpy()[:2].tolist())
            assert image_height_width(path) == decoded == read == (height, width), (name, height, width)


def test_the_walk_needs_only_the_frame_header_tensorflow_the_scan(tmp_path, rng):
    pixels = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
    encoded = tf.io.encode_jpeg(pixels).numpy()
    end = _frame_end(encoded)
    # 70 KB of comments between the frame header and the Huffman tables and scan
    data = encoded[:end] + _segment(0xFE, 40000) + _segment(0xFE, 30000) + encoded[end:]
    head = data[:FIRST_READ]
    assert seg_folder._jpeg_height_width(head) == (40, 56)
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.io.extract_jpeg_shape(head)
    assert tuple(tf.io.extract_jpeg_shape(data).numpy()[:2].tolist()) == (40, 56)
    path = tmp_path / "comments.jpg"
    path.write_bytes(data)
    assert image_height_width(path) == tuple(tf.io.decode_jpeg(data).shape[:2])


def test_png_sizes_and_unreadable_headers(tmp_path, rng):
    path = tmp_path / "mask.png"
    path.write_bytes(tf.io.encode_png(rng.integers(0, 255, (37, 5, 1), dtype=np.uint8)).numpy())
    assert image_height_width(path) == (37, 5)
    jpeg = tf.io.encode_jpeg(np.zeros((30, 40, 3), np.uint8)).numpy()
    for data in (b"GIF89a" + bytes(40), b"", jpeg[:20], jpeg[:2] + b"\x00" * 100):
        path.write_bytes(data)
        assert image_height_width(path) is None, data[:8]
