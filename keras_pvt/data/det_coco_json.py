"""Reading a COCO ``instances_*.json`` into per-image boxes, checked before any training.

mmdet's `CocoDataset` rules where real COCO files need them: annotations marked ``ignore``, boxes
under one pixel wide or high, a non-positive ``area`` and boxes with no overlap with the image are
left out of training (COCO itself holds such boxes); ``iscrowd`` boxes are kept apart (not trained
on, counted by the evaluation); a box partly outside the image is clipped later, with the image.
Training images without a box to train on or with a side under `MIN_TRAIN_SIDE` are skipped (mmdet's
``filter_empty_gt``, ``min_size=32``). What no correct file holds is refused with a `ValueError`
naming the file and the fix: negative widths or heights, boxes wholly outside their image (unless
``invalid_boxes="skip"``: mmdet drops them silently), category ids missing from ``categories``,
annotations of unknown images, repeated ids and image files that are not there.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

MIN_TRAIN_SIDE = 32  # mmdet's filter_cfg min_size
SHOWN = 5  # offending entries quoted in an error


@dataclasses.dataclass
class CocoImages:
    """One json's images (paths, ids, sizes) with their boxes (``x1, y1, x2, y2`` pixels, not yet
    clipped), contiguous labels and crowd flags, plus the categories and the parsed json itself."""

    paths: list[str]
    image_ids: np.ndarray  # int64 (I,)
    sizes: np.ndarray  # int64 (I, 2): height, width from the json
    boxes: list[np.ndarray]  # float32 (K_i, 4)
    labels: list[np.ndarray]  # int32 (K_i,)
    crowd: list[np.ndarray]  # bool (K_i,)
    areas: list[np.ndarray]  # float32 (K_i,)
    annotated: np.ndarray  # bool (I,): the json has an annotation of the image
    class_names: list[str]
    category_ids: list[int]
    ground_truth: dict

    def select(self, keep: np.ndarray) -> CocoImages:
        """The images where `keep` (bool (I,)) holds, with the ground truth cut to them."""
        index = np.flatnonzero(keep)
        ids = set(self.image_ids[index].tolist())
        gt = dict(self.ground_truth)
        gt["images"] = [image for image in gt["images"] if image["id"] in ids]
        gt["annotations"] = [ann for ann in gt["annotations"] if ann["image_id"] in ids]
        return CocoImages(
            paths=[self.paths[i] for i in index],
            image_ids=self.image_ids[index],
            sizes=self.sizes[index],
            boxes=[self.boxes[i] for i in index],
            labels=[self.labels[i] for i in index],
            crowd=[self.crowd[i] for i in index],
            areas=[self.areas[i] for i in index],
            annotated=self.annotated[index],
            class_names=self.class_names,
            category_ids=self.category_ids,
            ground_truth=gt,
        )

    def trainable(self) -> np.ndarray:
        """bool (I,): images mmdet trains on (annotated at all, both sides >= 32 px)."""
        return self.annotated & (self.sizes.min(axis=1) >= MIN_TRAIN_SIDE)


def read_coco_json(json_path: str, image_dir: str, invalid_boxes: str = "error") -> CocoImages:
    """The images and boxes of one COCO instances file whose ``file_name``s live in `image_dir`.

    `invalid_boxes`: ``"error"`` refuses boxes wholly outside their image; ``"skip"`` leaves them out.
    """
    if invalid_boxes not in ("error", "skip"):
        raise ValueError(f"invalid_boxes must be 'error' or 'skip', got {invalid_boxes!r}.")
    gt = _load(json_path)
    categories = sorted(gt["categories"], key=lambda c: c["id"])
    category_ids = [int(c["id"]) for c in categories]
    label_of = {cid: index for index, cid in enumerate(category_ids)}
    images = gt["images"]
    _refuse_repeats(json_path, "image", [image["id"] for image in images])
    _refuse_repeats(json_path, "annotation", [ann["id"] for ann in gt["annotations"] if "id" in ann])
    row = {image["id"]: index for index, image in enumerate(images)}
    per_image: list[list[dict]] = [[] for _ in images]
    annotated = np.zeros(len(images), bool)
    unknown_category, unknown_image, negative, outside = [], [], [], []
    malformed = [ann for ann in gt["annotations"] if not _well_formed(ann)]
    _refuse(
        json_path,
        malformed,
        "missing or malformed keys",
        "Each needs id, image_id, category_id and bbox [x, y, w, h].",
    )
    for ann in gt["annotations"]:
        if ann["category_id"] not in label_of:
            unknown_category.append(ann)
        if ann["image_id"] not in row:
            unknown_image.append(ann)
            continue
        annotated[row[ann["image_id"]]] = True
        x, y, w, h = (float(v) for v in ann["bbox"])
        if w < 0 or h < 0:
            negative.append(ann)
            continue
        image = images[row[ann["image_id"]]]
        inter_w = max(0.0, min(x + w, image["width"]) - max(x, 0.0))
        inter_h = max(0.0, min(y + h, image["height"]) - max(y, 0.0))
        if inter_w * inter_h == 0 and w >= 1 and h >= 1:
            outside.append(ann)
            continue
        if (
            ann.get("ignore", False)
            or inter_w * inter_h == 0
            or ann.get("area", w * h) <= 0
            or w < 1
            or h < 1
        ):
            continue  # mmdet's CocoDataset leaves these out of training
        per_image[row[ann["image_id"]]].append(ann)
    _refuse(
        json_path,
        unknown_category,
        "category_id not among the file's categories",
        _fix_category(category_ids),
    )
    _refuse(json_path, unknown_image, "image_id not among the file's images", "Add the image or remove them.")
    _refuse(
        json_path,
        negative,
        "a negative width or height",
        "COCO boxes are [x, y, width, height] (top-left corner and size); convert [x1, y1, x2, y2] boxes.",
    )
    if invalid_boxes == "error":
        _refuse(
            json_path,
            outside,
            "a box wholly outside its image (check the image's width/height and the box units)",
            "Correct or remove them, or pass invalid_boxes='skip' to leave them out as mmdet does.",
        )
    paths = [os.path.join(image_dir, image["file_name"]) for image in images]
    _refuse_missing(json_path, image_dir, paths)
    return CocoImages(
        paths=paths,
        image_ids=np.array([image["id"] for image in images], np.int64),
        sizes=np.array([[image["height"], image["width"]] for image in images], np.int64).reshape(-1, 2),
        boxes=[_xyxy(anns) for anns in per_image],
        labels=[np.array([label_of[a["category_id"]] for a in anns], np.int32) for anns in per_image],
        crowd=[np.array([bool(a.get("iscrowd", 0)) for a in anns], bool) for anns in per_image],
        areas=[np.array([float(a.get("area", 0.0)) for a in anns], np.float32) for anns in per_image],
        annotated=annotated,
        class_names=[str(c["name"]) for c in categories],
        category_ids=category_ids,
        ground_truth=gt,
    )


def _load(json_path: str) -> dict:
    try:
        with open(json_path, encoding="utf-8") as handle:
            gt = json.load(handle)
    except json.JSONDecodeError as error:
        raise ValueError(f"{json_path} is not valid JSON ({error}); re-export the annotations.") from error
    missing = [key for key in ("images", "annotations", "categories") if key not in gt]
    if not isinstance(gt, dict) or missing:
        raise ValueError(
            f"{json_path} is not a COCO instances file: it lacks {missing or 'a top-level object'}; "
            "it needs 'images', 'annotations' and 'categories' lists (the format of instances_val2017.json)."
        )
    incomplete = [image for image in gt["images"] if not {"id", "file_name", "height", "width"} <= set(image)]
    if incomplete:
        raise ValueError(
            f"{json_path}: {len(incomplete)} image entries lack id, file_name, height or width, e.g. "
            f"{incomplete[0]}; every image needs all four."
        )
    if not gt["categories"]:
        raise ValueError(f"{json_path} has no categories; list the object classes under 'categories'.")
    return gt


def _well_formed(ann: object) -> bool:
    if not isinstance(ann, dict) or not {"image_id", "category_id", "bbox"} <= set(ann):
        return False
    box = ann["bbox"]
    return isinstance(box, (list, tuple)) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)


def _xyxy(anns: list[dict]) -> np.ndarray:
    boxes = [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]
    return np.asarray(boxes, np.float32).reshape(-1, 4)


def _refuse(json_path: str, bad: list[dict], problem: str, fix: str) -> None:
    if bad:
        shown = ", ".join(
            f"id {a.get('id', '?')} (image {a.get('image_id')}, "
            f"category {a.get('category_id')}, bbox {a.get('bbox')})"
            for a in bad[:SHOWN]
        )
        more = f" and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
        raise ValueError(f"{json_path}: {len(bad)} annotation(s) with {problem}: {shown}{more}. {fix}")


def _fix_category(category_ids: list[int]) -> str:
    return (
        f"The file's category ids are {category_ids}; add the missing categories or remove those annotations."
    )


def _refuse_repeats(json_path: str, what: str, ids: list) -> None:
    seen, repeated = set(), []
    for value in ids:
        if value in seen:
            repeated.append(value)
        seen.add(value)
    if repeated:
        raise ValueError(
            f"{json_path}: {len(repeated)} repeated {what} id(s), e.g. {repeated[:SHOWN]}; every {what} "
            "needs its own id."
        )


def _refuse_missing(json_path: str, image_dir: str, paths: list[str]) -> None:
    missing = [path for path in paths if not Path(path).is_file()]
    if missing:
        shown = "\n  ".join(missing[:SHOWN]) + (
            f"\n  ... and {len(missing) - SHOWN} more" if len(missing) > SHOWN else ""
        )
        raise ValueError(
            f"{len(missing)} image file(s) named in {json_path} are not in {image_dir}:\n  {shown}\n"
            "Copy the images there (the json's file_name is relative to that folder) or remove their entries."
        )
