"""`keras_pvt_seg_shapes`: an offline, deterministic semantic-segmentation dataset for tensorflow-datasets.

Each image holds one to three of the `keras_pvt_shapes` shapes (same drawing, `shapes.shape_mask`),
each with its own colour, size, position and rotation, on a noisy colour-gradient background. The
per-pixel mask holds 0 for background and ``1 + shape index`` under each shape. Shapes are drawn in
order and may overlap a little (their centres are kept apart); where they do, the later shape is on
top, in the image and in the mask. A shape's class is its outline, never its colour.
Pick a resolution with a named config (``"keras_pvt_seg_shapes/128px"``) or any size with
`seg_shapes_config` (``"keras_pvt_seg_shapes/96px_400_80"``: 400 train, 80 test images).
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

SEG_DATASET_NAME = "keras_pvt_seg_shapes"
SEG_CLASS_NAMES = ("background", *CLASS_NAMES)
DEFAULT_SPLIT_SIZES = (1000, 200)  # train, test
MAX_SHAPES = 3
RADIUS_RANGE = (0.15, 0.3)  # fraction of the image side
MIN_CENTRE_GAP = 0.7  # centres at least this fraction of the two radii apart
PLACEMENT_TRIES = 20


def seg_shapes_config(
    image_size: int,
    train_size: int = DEFAULT_SPLIT_SIZES[0],
    test_size: int = DEFAULT_SPLIT_SIZES[1],
) -> ShapesConfig:
    """The config for any square resolution and split sizes (one shared object per combination).

    Its name, ``"<size>px"`` or ``"<size>px_<train>_<test>"``, also works as a tfds config name.
    """
    return sized_config(SEG_DATASET_NAME, 32, DEFAULT_SPLIT_SIZES, image_size, train_size, test_size)


class KerasPvtSegShapes(KerasPvtShapes):
    """Several coloured shapes per image with a per-pixel class mask, generated locally.

    The classification builder's configs, splits and seeds; other features and examples."""

    BUILDER_CONFIGS = [seg_shapes_config(size) for size in (64, 96, 128, 256, 512)]
    DEFAULT_BUILDER_CONFIG_NAME = "128px"
    config_for = staticmethod(seg_shapes_config)

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.image_size
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(size, size, 3)),
                    "segmentation_mask": tfds.features.LabeledImage(
                        labels=list(SEG_CLASS_NAMES), shape=(size, size, 1)
                    ),
                }
            ),
            supervised_keys=("image", "segmentation_mask"),
            homepage="https://github.com/keras-pvt/keras-pvt",
        )

    def _generate_examples(self, split: str, count: int) -> Iterator[tuple[int, dict]]:
        size = self.builder_config.image_size
        for index in range(count):
            image, mask = render_segmentation_example(size, SPLIT_SEEDS[split], index)
            yield index, {"image": image, "segmentation_mask": mask[..., None]}


def render_segmentation_example(size: int, split_seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """The `index`-th (image uint8 (size, size, 3), mask uint8 (size, size)) of a split.

    A pure function of its arguments. Mask values: 0 background, ``1 + CLASS_NAMES.index(shape)``.
    """
    rng = np.random.default_rng([zlib.crc32(SEG_DATASET_NAME.encode()), split_seed, index])
    image = noisy_background(rng, size)
    background_mean = image.mean(axis=(0, 1))
    mask = np.zeros((size, size), np.uint8)
    placed: list[tuple[np.ndarray, float]] = []
    for _ in range(int(rng.integers(1, MAX_SHAPES + 1))):
        label = int(rng.integers(len(CLASS_NAMES)))
        radius = rng.uniform(*RADIUS_RANGE) * size
        center = free_centre(rng, size, radius, placed, MIN_CENTRE_GAP, PLACEMENT_TRIES)
        placed.append((center, radius))
        pixels = shape_mask(CLASS_NAMES[label], size, center, radius, rng.uniform(0, 2 * np.pi))
        image[pixels] = contrasting_colour(rng, background_mean)
        mask[pixels] = label + 1
    image = image + rng.normal(0, 10, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask
