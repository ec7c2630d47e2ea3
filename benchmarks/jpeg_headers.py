"""What reading JPEG sizes from file headers costs: the folder checks' own segment walk
(`seg_folder.image_height_width`) against TensorFlow's `tf.io.extract_jpeg_shape` on the first
64 KiB and on the whole file, and Pillow's lazy `Image.open` (not a keras-pvt dependency), in CPU
microseconds per JPEG; then `seg_folder.find_pairs` (the header and end checks) with the walk and
with TensorFlow's reading swapped in, in ms of CPU per pair. Writes ``results/jpeg_headers.{json,md}``.

    python benchmarks/jpeg_headers.py
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf
from folder_checks import write_ade_sized
from machine import installed_versions, machine_info, provenance_lines

from keras_pvt.data import seg_folder

RESULTS = Path(__file__).resolve().parent / "results"
REPEATS = 5
SMALL_PAIRS = 1200


def tf_head(path: Path) -> tuple[int, int]:
    with open(path, "rb") as handle:
        shape = tf.io.extract_jpeg_shape(handle.read(1 << 16)).numpy()
    return int(shape[0]), int(shape[1])


def tf_file(path: Path) -> tuple[int, int]:
    shape = tf.io.extract_jpeg_shape(tf.io.read_file(str(path))).numpy()
    return int(shape[0]), int(shape[1])


def pillow(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path, formats=["JPEG"]) as image:
        return image.size[1], image.size[0]


def tf_jpeg_height_width(data: bytes) -> tuple[int, int] | None:
    """`seg_folder._jpeg_height_width` done by TensorFlow (what replacing the walk would be)."""
    try:
        shape = tf.io.extract_jpeg_shape(data).numpy()
    except tf.errors.InvalidArgumentError:
        return None
    return int(shape[0]), int(shape[1])


def cpu_median(work: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return float(np.median(times))


def write_small(root: Path) -> None:
    rng = np.random.default_rng(0)
    for kind in ("images", "masks"):
        (root / kind).mkdir(parents=True)
    for index in range(SMALL_PAIRS):
        pixels = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
        (root / "images" / f"{index:05d}.jpg").write_bytes(tf.io.encode_jpeg(pixels, quality=90).numpy())
        (root / "masks" / f"{index:05d}.png").write_bytes(tf.io.encode_png(pixels[..., :1] % 5).numpy())


def measure(folders: dict[str, Path]) -> dict[str, dict[str, float]]:
    readers = {
        "walk (ours)": seg_folder.image_height_width,
        "tf.io.extract_jpeg_shape, first 64 KiB": tf_head,
        "tf.io.extract_jpeg_shape, whole file": tf_file,
        "Pillow Image.open": pillow,
    }
    walk = seg_folder._jpeg_height_width
    results = {}
    for name, root in folders.items():
        jpegs = sorted((root / "images").glob("*.jpg"))
        pairs = len(jpegs)
        expected = [seg_folder.image_height_width(path) for path in jpegs]
        found = {}
        for reader_name, reader in readers.items():
            assert [reader(path) for path in jpegs] == expected, reader_name
            found[f"{reader_name}: us CPU per JPEG"] = (
                1e6 * cpu_median(lambda r=reader, js=jpegs: [r(p) for p in js]) / pairs
            )
        for label, function in (("walk (ours)", walk), ("tf.io.extract_jpeg_shape", tf_jpeg_height_width)):
            seg_folder._jpeg_height_width = function
            seg_folder.find_pairs(str(root), 0.1)
            found[f"find_pairs with {label}: ms CPU per pair"] = (
                1e3 * cpu_median(lambda d=str(root): seg_folder.find_pairs(d, 0.1)) / pairs
            )
        seg_folder._jpeg_height_width = walk
        results[name] = found
    return results


def markdown(results: dict[str, dict[str, float]], machine: dict, load_after: tuple) -> str:
    lines = ["# Reading JPEG sizes for the segmentation folder checks", ""]
    lines += provenance_lines(machine, load_after, {".venv": installed_versions(("tensorflow", "pillow"))})
    lines += [f"Median of {REPEATS} runs, CPU seconds of the process. Every reader gave the same sizes.", ""]
    lines += ["| folder | measure | value |", "|---|---|---:|"]
    for folder, found in results.items():
        lines += [f"| {folder} | {measure} | {value:.3f} |" for measure, value in found.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="keras_pvt_jpeg_headers_") as scratch:
        folders = {
            "128 x 128 JPEGs": Path(scratch) / "small",
            "ADE20K-sized 512 x 683": Path(scratch) / "ade",
        }
        write_small(folders["128 x 128 JPEGs"])
        write_ade_sized(folders["ADE20K-sized 512 x 683"])
        results = measure(folders)
    load_after = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "jpeg_headers.json").write_text(
        json.dumps({"machine": machine, "load_after": load_after, "results": results}, indent=2) + "\n"
    )
    (RESULTS / "jpeg_headers.md").write_text(markdown(results, machine, load_after))
    print(markdown(results, machine, load_after))


if __name__ == "__main__":
    main()
