"""Detection agreement: how an exported detector's detections compare with the Keras model's.

Padded detection arrays cannot be compared element by element: two detections of nearly equal
score swap rows, and an untrained detector outputs padding only. Instead each image's exported
detections are matched to the Keras ones (same label, IoU >= `MATCH_IOU`, greedily by Keras score)
and the agreement is the F1 of the matches, 2·matched / (Keras detections + exported ones).

A near tie is a detection either side may keep or drop at the file's error: its score within
`score_tolerance` of the score threshold, or of the lowest score kept in an image whose detections
fill every slot. Unmatched near ties count on neither side; when they are too many for the
agreement to judge (or the Keras model detects nothing), the agreement is undecided. With
pycocotools installed, the export's COCO AP with the Keras detections as ground truth is reported
too (1.0 for identical detections).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

DETECTION_OUTPUTS = ("boxes", "confidence", "labels", "num_detections")
MATCH_IOU = 0.9  # the same detection: float round-off and float16 move a box by far less
TIE_FACTOR = 4.0  # a near tie's score distance: this many times the largest matched score change
MIN_SCORE_TOLERANCE = 1e-6
# Matched pairs left out of the error figures, worst first: where NMS chose between two overlapping
# detections of near-equal score, each side may keep the other one, which then matches its neighbour.
SWAPPED_PAIRS = 0.01


@dataclasses.dataclass
class DetectionAgreement:
    """The detection-level comparison of an exported detector with its Keras model.

    Attributes:
        images: images compared.
        keras_detections, export_detections: detections each side kept (padding excluded).
        matched: pairs of the same label with IoU >= `MATCH_IOU`.
        near_ties: unmatched detections within the score tolerance of a keep-or-drop threshold.
        agreement: 2·matched / (both sides' detections less their unmatched near ties); None when
            there is nothing to compare (no detection on either side).
        near_tie_fraction: unmatched near ties over all detections of both sides.
        mean_iou: mean IoU of the matched pairs.
        max_score_diff: largest confidence difference of a matched pair.
        score_tolerance: the score distance that made a detection a near tie.
        ap_vs_keras: COCO AP (IoU 0.50:0.95) of the export's detections, the Keras detections as
            ground truth (None without pycocotools or without Keras detections).
    """

    images: int
    keras_detections: int
    export_detections: int
    matched: int
    near_ties: int
    agreement: float | None
    near_tie_fraction: float
    mean_iou: float | None
    max_score_diff: float | None
    score_tolerance: float
    ap_vs_keras: float | None = None


def is_detection_outputs(outputs: Mapping[str, Any]) -> bool:
    """Whether `outputs` are a detector's padded detections (`DETECTION_OUTPUTS`)."""
    return set(DETECTION_OUTPUTS) <= set(outputs)


def _valid(outputs: Mapping[str, np.ndarray], image: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes xyxy, scores, labels) of one image's kept detections."""
    count = int(np.asarray(outputs["num_detections"])[image])
    boxes = np.asarray(outputs["boxes"], np.float64)[image, :count]
    scores = np.asarray(outputs["confidence"], np.float64)[image, :count]
    labels = np.asarray(outputs["labels"]).astype(np.int64)[image, :count]
    return boxes, scores, labels


def as_xyxy(outputs: Mapping[str, Any], box_format: str) -> dict[str, Any]:
    """`outputs` with their boxes converted from `box_format` to xyxy. A relative format is taken as
    pixels of a 1x1 image: IoU, matching and relative errors are the same in either."""
    source = box_format.lower().removeprefix("rel_")
    if source == "xyxy":
        return dict(outputs)
    import keras

    boxes = np.asarray(outputs["boxes"], np.float32)
    xyxy = keras.utils.bounding_boxes.convert_format(boxes, source=source, target="xyxy")
    return {**outputs, "boxes": np.asarray(keras.ops.convert_to_numpy(xyxy))}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    overlap = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=-1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=-1)
    union = area_a[:, None] + area_b[None, :] - overlap
    return np.where(union > 0, overlap / np.where(union > 0, union, 1.0), 0.0)


def match(
    reference: tuple[np.ndarray, np.ndarray, np.ndarray], exported: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> list[tuple[int, int, float]]:
    """(Keras index, export index, IoU) pairs: each Keras detection, best score first, takes the
    unmatched exported detection of its label with the highest IoU, if that is >= `MATCH_IOU`."""
    iou = box_iou(reference[0], exported[0])
    iou[reference[2][:, None] != exported[2][None, :]] = -1.0
    pairs, taken = [], np.zeros(len(exported[0]), bool)
    for i in np.argsort(-reference[1], kind="stable"):
        candidates = np.where(taken, -1.0, iou[i])
        if candidates.size and candidates.max() >= MATCH_IOU:
            j = int(candidates.argmax())
            taken[j] = True
            pairs.append((int(i), j, float(iou[i, j])))
    return pairs


def _near_tie(scores: np.ndarray, full: bool, threshold: float, tolerance: float) -> np.ndarray:
    """Which of an image's detections either side might keep or drop at `tolerance`."""
    near = np.abs(scores - threshold) <= tolerance
    if full and scores.size:
        near |= scores <= scores.min() + tolerance
    return near


def detection_agreement(
    reference: Mapping[str, np.ndarray],
    exported: Mapping[str, np.ndarray],
    score_threshold: float,
    max_score_tolerance: float,
) -> tuple[DetectionAgreement, list[tuple[np.ndarray, np.ndarray]]]:
    """The `DetectionAgreement` of `exported` with `reference` (both xyxy), and per image the
    matched boxes and scores as ``(keras (n, 5), export (n, 5))`` arrays for error figures.

    The near-tie tolerance is `TIE_FACTOR` x the largest matched score change, at least
    `MIN_SCORE_TOLERANCE` and at most `max_score_tolerance`.
    """
    images = len(np.asarray(reference["num_detections"]))
    slots = np.asarray(reference["boxes"]).shape[1]
    per_image, pairs_of, score_diff, ious = [], [], 0.0, []
    for image in range(images):
        ref, out = _valid(reference, image), _valid(exported, image)
        pairs = match(ref, out)
        per_image.append((ref, out, pairs))
        for i, j, iou in pairs:
            score_diff = max(score_diff, abs(ref[1][i] - out[1][j]))
            ious.append(iou)
        rows = [i for i, _, _ in pairs], [j for _, j, _ in pairs]
        keras_rows = np.concatenate([ref[0][rows[0]], ref[1][rows[0], None]], axis=1)
        export_rows = np.concatenate([out[0][rows[1]], out[1][rows[1], None]], axis=1)
        pairs_of.append((keras_rows, export_rows))
    tolerance = float(np.clip(TIE_FACTOR * score_diff, MIN_SCORE_TOLERANCE, max_score_tolerance))
    counted, matched, ties, total = 0, 0, 0, 0
    for ref, out, pairs in per_image:
        for side, taken in ((ref, {i for i, _, _ in pairs}), (out, {j for _, j, _ in pairs})):
            near = _near_tie(side[1], len(side[1]) >= slots, score_threshold, tolerance)
            loose = np.array([k not in taken for k in range(len(side[1]))], bool)
            ties += int(np.sum(near & loose))
            counted += int(np.sum(~(near & loose)))
            total += len(side[1])
        matched += len(pairs)
    agreement = DetectionAgreement(
        images=images,
        keras_detections=sum(len(ref[1]) for ref, _, _ in per_image),
        export_detections=sum(len(out[1]) for _, out, _ in per_image),
        matched=matched,
        near_ties=ties,
        agreement=(2.0 * matched / counted) if counted else None,
        near_tie_fraction=(ties / total) if total else 0.0,
        mean_iou=float(np.mean(ious)) if ious else None,
        max_score_diff=float(score_diff) if ious else None,
        score_tolerance=tolerance,
    )
    agreement.ap_vs_keras = ap_against_keras(reference, exported)
    return agreement, pairs_of


def ap_against_keras(reference: Mapping[str, np.ndarray], exported: Mapping[str, np.ndarray]) -> float | None:
    """COCO AP of the exported detections with the Keras ones as ground truth; None without
    pycocotools or without a Keras detection."""
    try:
        import pycocotools  # noqa: F401
    except ImportError:
        return None
    from keras_pvt.detection.coco_eval import coco_metrics

    images = len(np.asarray(reference["num_detections"]))
    annotations, results, labels = [], [], set()
    for image in range(images):
        for source, rows in ((reference, annotations), (exported, results)):
            boxes, scores, classes = _valid(source, image)
            for box, score, label in zip(boxes, scores, classes):
                width, height = float(box[2] - box[0]), float(box[3] - box[1])
                rows.append(
                    {
                        "id": len(rows) + 1,
                        "image_id": image,
                        "category_id": int(label),
                        "bbox": [float(box[0]), float(box[1]), width, height],
                        "area": width * height,
                        "iscrowd": 0,
                        "score": float(score),
                    }
                )
                labels.add(int(label))
    if not annotations:
        return None
    truth = {
        "images": [{"id": image} for image in range(images)],
        "annotations": annotations,
        "categories": [{"id": label} for label in sorted(labels)],
    }
    results = [r for r in results if r["category_id"] in labels]
    return coco_metrics(truth, results)["ap"]


def drop_swapped_pairs(keras_rows: np.ndarray, export_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The matched (n, 5) box-and-score rows less the `SWAPPED_PAIRS` fraction whose boxes differ
    most (rounded down: a few pairs keep them all)."""
    dropped = int(SWAPPED_PAIRS * len(keras_rows))
    if not dropped:
        return keras_rows, export_rows
    error = np.abs(keras_rows[:, :4] - export_rows[:, :4]).max(axis=1)
    keep = np.sort(np.argsort(error, kind="stable")[: len(error) - dropped])
    return keras_rows[keep], export_rows[keep]


def detection_failures(agreement: DetectionAgreement, minimum: float) -> list[str]:
    """The failure when the detection agreement is below `minimum`."""
    if agreement.agreement is None or agreement.agreement >= minimum:
        return []
    return [
        f"detection agreement {agreement.agreement:.3f} is below the required {minimum:.3f}: "
        f"{agreement.matched} of {agreement.keras_detections} Keras and {agreement.export_detections} "
        f"exported detections match (same label, IoU >= {MATCH_IOU})."
    ]


def undecided_reason(agreement: DetectionAgreement, minimum: float) -> str | None:
    """Why the detection agreement cannot judge the file, or None when it can."""
    if agreement.agreement is None:
        return (
            "detection agreement cannot judge this file: neither it nor the Keras model detects "
            "anything on these images (an untrained detector, or images without objects)."
        )
    if agreement.near_tie_fraction > max(0.0, 1.0 - minimum):
        return (
            f"detection agreement cannot judge this file: {100 * agreement.near_tie_fraction:.1f}% "
            "of the detections are near ties (a score within the file's error of a keep-or-drop "
            f"threshold), more than the {100 * max(0.0, 1 - minimum):.1f}% the minimum allows; "
            "the relative error decides."
        )
    return None
