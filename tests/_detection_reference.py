"""Access to the mmdet-made RetinaNet fixture (tests/fixtures/det_reference.npz, made by
make_detection_reference.py): its weights regenerated from the seed, its cases and comparisons."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import keras
import numpy as np
from _pvt_reference import FIXTURES
from _seeded_weights import case_name, seeded_images, seeded_state_dict, weight_sums

from keras_pvt import PVTV2Config

DET_REFERENCE = FIXTURES / "det_reference.npz"
CASES = ((128, 128, 2), (97, 131, 1))
SIZES = tuple(case_name(h, w) for h, w, _ in CASES)
CLS_BIAS_KEY = "bbox_head.retina_cls.bias"
CLS_WEIGHT_KEY = "bbox_head.retina_cls.weight"
# The bar on raw outputs: max |ours - mmdet| <= TOLERANCE x max |mmdet|; boxes of equal
# detections within BOX_TOLERANCE pixels x the image size, scores within SCORE_TOLERANCE.
TOLERANCE = 1e-4
BOX_TOLERANCE = 1e-4
SCORE_TOLERANCE = 1e-5


@lru_cache(maxsize=1)
def reference() -> dict[str, np.ndarray]:
    with np.load(DET_REFERENCE) as archive:
        return {key: archive[key] for key in archive.files}


def meta() -> dict[str, Any]:
    return json.loads(str(reference()["meta"]))


def layout() -> list[tuple[str, tuple[int, ...]]]:
    return [(name, tuple(shape)) for name, shape in json.loads(str(reference()["layout"]))]


def backbone_config() -> PVTV2Config:
    return PVTV2Config(**{**meta()["backbone"], "num_classes": 0})


@lru_cache(maxsize=1)
def _state() -> dict[str, np.ndarray]:
    info, names = meta(), layout()
    state = seeded_state_dict(names, info["seed"])
    state[CLS_BIAS_KEY] = state[CLS_BIAS_KEY] + np.float32(info["cls_bias"])
    state[CLS_WEIGHT_KEY] = state[CLS_WEIGHT_KEY] * np.float32(info["cls_scale"])
    sums = weight_sums(state, names)
    assert np.allclose(sums, reference()["weight_sums"], rtol=1e-6, atol=1e-6), "seeded weights differ"
    return state


def checkpoint_state() -> dict[str, np.ndarray]:
    """The fixture detector's weights, as the paper's checkpoints name them (a fresh copy)."""
    return {key: value.copy() for key, value in _state().items()}


def images(case: str) -> np.ndarray:
    height, width, batch = next(c for c in CASES if case_name(c[0], c[1]) == case)
    return seeded_images(height, width, batch, meta()["seed"])


def expected(case: str, key: str) -> np.ndarray:
    return reference()[f"{case}/{key}"]


def relative_error(ours: Any, theirs: np.ndarray) -> float:
    ours, theirs = keras.ops.convert_to_numpy(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def detection_mismatch(ours: dict[str, Any], case: str) -> list[str]:
    """What differs between our detections and mmdet's for a case ([] when they are equal)."""
    got = {key: keras.ops.convert_to_numpy(value) for key, value in ours.items()}
    problems = []
    counts = expected(case, "num_detections")
    if not np.array_equal(got["num_detections"], counts):
        return [f"num_detections {got['num_detections'].tolist()} vs mmdet {counts.tolist()}"]
    scale = float(max(int(s) for s in case.split("x")))
    for image, count in enumerate(counts):
        labels, want_labels = got["labels"][image, :count], expected(case, "det_labels")[image, :count]
        if not np.array_equal(labels, want_labels):
            problems.append(f"image {image}: labels differ at {np.flatnonzero(labels != want_labels)[:5]}")
        box_error = np.abs(got["boxes"][image, :count] - expected(case, "det_boxes")[image, :count]).max()
        if box_error > BOX_TOLERANCE * scale:
            problems.append(f"image {image}: boxes differ by {box_error}")
        score_error = np.abs(
            got["confidence"][image, :count] - expected(case, "det_scores")[image, :count]
        ).max()
        if score_error > SCORE_TOLERANCE:
            problems.append(f"image {image}: scores differ by {score_error}")
        pad = got["labels"][image, count:]
        if pad.size and not (np.all(pad == -1) and np.all(got["boxes"][image, count:] == -1)):
            problems.append(f"image {image}: padding is not -1")
    return problems
