"""`keras_pvt_det_shapes`: an offline, deterministic object-detection dataset for tensorflow-datasets.

Each image holds one to `MAX_SHAPES` of the `keras_pvt_shapes` shapes (same drawing,
`shapes.shape_mask`), each with its own colour, size, position and rotation, on a noisy
colour-gradient background; each shape's box is the tight box of its drawn pixels. The features
follow tfds' ``coco/2017`` (``objects/bbox`` normalised ``(ymin, xmin, ymax, xmax)``,
``objects/label``, ``objects/is_crowd``, ``objects/area``, ``image/id``), so one reader serves both.
Sizes range from specks to large shapes, so COCO's small / medium / large AP all have objects.
Pick a resolution with a named config (``"keras_pvt_det_shapes/128px"``) or any size with
`det_shapes_config` (``"keras_pvt_det_shapes/96px_400_80"``: 400 train, 80 test images).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds

from keras_pvt.data.shapes import (
    CLASS_NAMES,
    SPLIT_SEEDS,
    KerasPvtShapes,
    ShapesConfig,
    contrasting_colour,
    free_centre,
    noisy_background,
    shape_mask,
    sized_config,
)

DET_DATASET_NAME = "keras_pvt_det_shapes"
DET_CLASS_NAMES = CLASS_NAMES  # no background class: detection labels are 0 .. 5
DEFAULT_SPLIT_SIZES = (1000, 200)  # train, test
MAX_SHAPES = 4
RADIUS_RANGE = (0.06, 0.26)  # fraction of the image side
MIN_CENTRE_GAP = 0.9  # centres at least this fraction of the two radii apart (little occlusion)
PLACEMENT_TRIES = 20


def det_shapes_config(
    image_size: int,
    train_size: int = DEFAULT_SPLIT_SIZES[0],
    test_size: int = DEFAULT_SPLIT_SIZES[1],
) -> ShapesConfig:
    """The config for any square resolution and split sizes (one shared object per combination).

    Its name, ``"<size>px"`` or ``"<size>px_<train>_<test>"``, also works as a tfds config name.
    """
    return sized_config(DET_DATASET_NAME, 32, DEFAULT_SPLIT_SIZES, image_size, train_size, test_size)


class KerasPvtDetShapes(KerasPvtShapes):
    """Several coloured shapes per image with their boxes and classes, generated locally.

    The classification builder's configs, splits and seeds; other features and examples."""

    BUILDER_CONFIGS = [det_shapes_config(size) for size in (64, 128, 256, 512)]
    DEFAULT_BUILDER_CONFIG_NAME = "128px"
    config_for = staticmethod(det_shapes_config)

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.image_size
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(size, size, 3)),
                    "image/id": np.int64,
                    "objects": tfds.features.Sequence(
                        {
                            "bbox": tfds.features.BBoxFeature(),
                            "label": tfds.features.ClassLabel(names=list(DET_CLASS_NAMES)),
                            "is_crowd": np.bool_,
                            "area": np.int64,
                        }
                    ),
                }
            ),
            homepage="https://github.com/keras-pvt/keras-pvt",
        )

    def _generate_examples(self, split: str, count: int) -> Iterator[tuple[int, dict]]:
        size = self.builder_config.image_size
        for index in range(count):
            image, boxes, labels, areas = render_detection_example(size, SPLIT_SEEDS[split], index)
            objects = {
                "bbox": [
                    tfds.features.BBox(y1 / size, x1 / size, y2 / size, x2 / size) for x1, y1, x2, y2 in boxes
                ],
                "label": labels.tolist(),
                "is_crowd": [False] * len(labels),
                "area": areas.tolist(),
            }
            yield index, {"image": image, "image/id": index, "objects": objects}


def render_detection_example(
    size: int, split_seed: int, index: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The `index`-th (image uint8 (size, size, 3), boxes float32 (K, 4) ``x1, y1, x2, y2`` pixels,
    labels int64 (K,), areas int64 (K,): visible pixels) of a split; a pure function of its args.

    A box spans its shape's drawn pixels (pixel ``i`` covers ``[i, i + 1)``); a shape drawn later
    is on top, and a shape left with no visible pixel is dropped.
    """
    rng = np.random.default_rng([zlib.crc32(DET_DATASET_NAME.encode()), split_seed, index])
    image = noisy_background(rng, size)
    background_mean = image.mean(axis=(0, 1))
    owner = np.full((size, size), -1, np.int64)  # which shape each pixel shows
    labels, placed = [], []
    for number in range(int(rng.integers(1, MAX_SHAPES + 1))):
        label = int(rng.integers(len(CLASS_NAMES)))
        radius = rng.uniform(*RADIUS_RANGE) * size
        center = free_centre(rng, size, radius, placed, MIN_CENTRE_GAP, PLACEMENT_TRIES)
        placed.append((center, radius))
        pixels = shape_mask(CLASS_NAMES[label], size, center, radius, rng.uniform(0, 2 * np.pi))
        image[pixels] = contrasting_colour(rng, background_mean)
        owner[pixels] = number
        labels.append(label)
    image = image + rng.normal(0, 10, size=image.shape)
    boxes, kept, areas = [], [], []
    for number, label in enumerate(labels):
        ys, xs = np.nonzero(owner == number)
        if len(xs) == 0:
            continue
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        kept.append(label)
        areas.append(len(xs))
    return (
        np.clip(image, 0, 255).astype(np.uint8),
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(kept, np.int64),
        np.asarray(areas, np.int64),
    )
