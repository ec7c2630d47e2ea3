"""Label tables of the segmentation datasets keras-pvt knows, and the mask value mapping.

A mask's stored values become training labels through a 256-entry lookup table: the dataset's
own mapping (e.g. Cityscapes' label ids to its 19 train ids), then optionally ADE20K's
``reduce_zero_label`` (0 -> ignore, k -> k - 1). 255 is the ignore label throughout.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_pvt.data.seg_shapes import SEG_CLASS_NAMES, SEG_DATASET_NAME

IGNORE_LABEL = 255

# tensorflow-datasets' `scene_parse150` holds the Places Challenge 2017 *instance* annotations
# (annotations_instance.tar): the red channel is one of these 100 object categories (0: none of
# them: stuff and unlabelled pixels), not the 150-class ADE20K semantic labels of the PVT-v2 paper.
ADE_INSTANCE_CLASSES = (
    "bed", "windowpane", "cabinet", "person", "door", "table", "curtain", "chair", "car",
    "painting", "sofa", "shelf", "mirror", "armchair", "seat", "fence", "desk", "wardrobe", "lamp",
    "bathtub", "railing", "cushion", "box", "column", "signboard", "chest of drawers", "counter",
    "sink", "fireplace", "refrigerator", "stairs", "case", "pool table", "pillow", "screen door",
    "bookcase", "coffee table", "toilet", "flower", "book", "bench", "countertop", "stove", "palm",
    "kitchen island", "computer", "swivel chair", "boat", "arcade machine", "bus", "towel", "light",
    "truck", "chandelier", "awning", "streetlight", "booth", "television receiver", "airplane",
    "apparel", "pole", "bannister", "ottoman", "bottle", "van", "ship", "fountain", "washer",
    "plaything", "stool", "barrel", "basket", "bag", "minibike", "oven", "ball", "food", "step",
    "trade name", "microwave", "pot", "animal", "bicycle", "dishwasher", "screen", "sculpture",
    "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "plate", "monitor",
    "bulletin board", "radiator", "glass", "clock", "flag",
)  # fmt: skip

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
    "bicycle",
)  # fmt: skip
# Cityscapes label id -> train id (cityscapesScripts' labels.py); every other id is ignored.
CITYSCAPES_TRAIN_IDS = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
    26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class MaskDataset:
    """How one tfds dataset stores its masks: feature keys, channel, label mapping and names."""

    mask_key: str
    class_names: tuple[str, ...]  # indexed by the label after `label_map`, before reduce_zero_label
    image_key: str = "image"
    channel: int = 0
    label_map: dict[int, int] | None = None  # stored value -> label; unmapped values are ignored
    reduce_zero_label: bool = False  # the default of the `reduce_zero_label` option
    note: str = ""


KNOWN_MASK_DATASETS = {
    SEG_DATASET_NAME: MaskDataset("segmentation_mask", SEG_CLASS_NAMES),
    "scene_parse150": MaskDataset(
        "annotation",
        ("other", *ADE_INSTANCE_CLASSES),
        reduce_zero_label=True,
        note="tfds' scene_parse150 holds the 100 instance categories, not ADE20K's 150 classes",
    ),
    "oxford_iiit_pet": MaskDataset(
        "segmentation_mask", ("background", "pet"), label_map={1: 1, 2: 0, 3: IGNORE_LABEL}
    ),  # trimap: 1 pet, 2 background, 3 the uncertain border (ignored)
    "cityscapes": MaskDataset(
        "segmentation_label", CITYSCAPES_CLASSES, image_key="image_left", label_map=CITYSCAPES_TRAIN_IDS
    ),
}
# Feature names under which other tfds datasets store a per-pixel mask (used as stored).
MASK_FEATURE_KEYS = ("segmentation_mask", "segmentation_label", "semantic_segmentation", "annotation", "mask")


def label_lookup(label_map: dict[int, int] | None, reduce_zero_label: bool) -> np.ndarray:
    """The uint8 (256,) table from stored mask values to labels (255 = ignore, kept as such)."""
    if label_map is None:
        table = np.arange(256)
    else:
        table = np.full(256, IGNORE_LABEL)
        for stored, label in label_map.items():
            table[stored] = label
    if reduce_zero_label:
        table = np.where((table == 0) | (table == IGNORE_LABEL), IGNORE_LABEL, table - 1)
    table[IGNORE_LABEL] = IGNORE_LABEL
    return table.astype(np.uint8)


def reduced_names(class_names: tuple[str, ...] | list[str], reduce_zero_label: bool) -> list[str]:
    """The class names after ``reduce_zero_label`` (the first, label 0, becomes ignored)."""
    return list(class_names[1:] if reduce_zero_label else class_names)
