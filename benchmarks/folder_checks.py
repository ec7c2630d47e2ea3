"""What checking a segmentation folder before training costs: the header and end-byte checks of
every file (`seg_folder.find_pairs`) and the one decoding pass over the masks
(`seg_folder_labels.largest_labels`), per pair, in CPU and wall seconds.

Two folders, written to a temporary directory: the embedded ``keras_pvt_seg_shapes/128px``
(1000 train + 200 test pairs of 128 x 128) and 300 pairs at ADE20K's typical size (512 x 683,
masks of about 150 labels in blobs). Writes ``results/folder_checks.{json,md}``.

    python benchmarks/folder_checks.py
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
import tensorflow_datasets as tfds
from machine import installed_versions, machine_info, provenance_lines

import keras_pvt.data  # noqa: F401  (registers the embedded builders)
from keras_pvt.data.seg_folder import find_pairs
from keras_pvt.data.seg_folder_labels import largest_labels
from keras_pvt.data.seg_labels import label_lookup

RESULTS = Path(__file__).resolve().parent / "results"
ADE_SIZE, ADE_PAIRS, ADE_LABELS = (512, 683), 300, 150
REPEATS = 3


def write_embedded(root: Path, data_dir: str) -> None:
    """keras_pvt_seg_shapes/128px as ``train/{images,masks}`` and ``val/...`` (test split)."""
    for split, folder in (("train", "train"), ("test", "val")):
        for kind in ("images", "masks"):
            (root / folder / kind).mkdir(parents=True)
        examples = tfds.load("keras_pvt_seg_shapes/128px", split=split, data_dir=data_dir)
        for index, example in enumerate(examples):
            stem = f"{index:05d}"
            image = tf.io.encode_jpeg(example["image"], quality=90).numpy()
            labels = tf.cast(example["segmentation_mask"], tf.uint8)
            mask = tf.io.encode_png(tf.reshape(labels, (*labels.shape[:2], 1))).numpy()
            (root / folder / "images" / f"{stem}.jpg").write_bytes(image)
            (root / folder / "masks" / f"{stem}.png").write_bytes(mask)


def write_ade_sized(root: Path) -> None:
    """ADE_PAIRS pairs of ADE_SIZE: blob masks (coarse labels, wobbly edges), noisy JPEG images."""
    rng = np.random.default_rng(0)
    for kind in ("images", "masks"):
        (root / kind).mkdir(parents=True)
    for index in range(ADE_PAIRS):
        coarse = rng.integers(0, ADE_LABELS, (1, 16, 22, 1)).astype("float32")
        wobble = tf.image.resize(rng.normal(size=(1, 64, 86, 1)).astype("float32"), ADE_SIZE)
        labels = tf.image.resize(coarse, ADE_SIZE, method="nearest") + tf.round(wobble * 3)
        mask = tf.cast(tf.clip_by_value(labels[0], 0, ADE_LABELS - 1), tf.uint8)
        colours = tf.image.resize(rng.uniform(0, 255, (1, 64, 86, 3)).astype("float32"), ADE_SIZE)[0]
        image = tf.cast(tf.clip_by_value(colours + rng.normal(0, 8, (*ADE_SIZE, 3)), 0, 255), tf.uint8)
        (root / "images" / f"{index:05d}.jpg").write_bytes(tf.io.encode_jpeg(image, quality=90).numpy())
        (root / "masks" / f"{index:05d}.png").write_bytes(tf.io.encode_png(mask).numpy())


def measure(work: Callable[[], object]) -> dict[str, float]:
    """The median CPU (all threads) and wall seconds of REPEATS runs of `work`."""
    cpu, wall = [], []
    for _ in range(REPEATS):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        work()
        cpu.append(time.process_time() - cpu_start)
        wall.append(time.perf_counter() - wall_start)
    return {"cpu_s": float(np.median(cpu)), "wall_s": float(np.median(wall))}


def measure_folder(root: Path) -> dict[str, object]:
    pairs = find_pairs(str(root), 0.1)
    masks = [mask for _, split_masks in pairs.splits.values() for mask in split_masks]
    table = label_lookup(None, False)
    largest_labels(masks[:8], table)  # TensorFlow's first-call costs aside
    return {
        "pairs": len(masks),
        "headers_and_ends": measure(lambda: find_pairs(str(root), 0.1)),
        "mask_decoding_pass": measure(lambda: largest_labels(masks, table)),
    }


def markdown(results: dict[str, dict], machine: dict, load_after: tuple) -> str:
    lines = ["# Checking a segmentation folder before training", ""]
    lines += provenance_lines(machine, load_after, {".venv": installed_versions(("tensorflow", "keras"))})
    lines += [
        "Median of 3 runs. CPU seconds count every thread of the process (tf.data decodes in parallel).",
        "",
        "| folder | pairs | check | CPU s | ms CPU per pair | wall s |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, found in results.items():
        for check in ("headers_and_ends", "mask_decoding_pass"):
            cost = found[check]
            per_pair = 1000 * cost["cpu_s"] / found["pairs"]
            lines.append(
                f"| {name} | {found['pairs']} | {check.replace('_', ' ')} | {cost['cpu_s']:.2f} | "
                f"{per_pair:.2f} | {cost['wall_s']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="keras_pvt_folder_checks_") as scratch:
        embedded, ade_sized = Path(scratch) / "seg_shapes_128px", Path(scratch) / "ade_sized"
        write_embedded(embedded, os.path.join(scratch, "tfds"))
        write_ade_sized(ade_sized)
        results = {
            "keras_pvt_seg_shapes/128px": measure_folder(embedded),
            f"ADE20K-sized {ADE_SIZE[0]}x{ADE_SIZE[1]}": measure_folder(ade_sized),
        }
    load_after = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    record = {"machine": machine, "load_after": load_after, "results": results}
    (RESULTS / "folder_checks.json").write_text(json.dumps(record, indent=2) + "\n")
    (RESULTS / "folder_checks.md").write_text(markdown(results, machine, load_after))
    print(markdown(results, machine, load_after))


if __name__ == "__main__":
    main()
