"""`keras_pvt_shapes`: an offline, deterministic image-classification dataset for tensorflow-datasets.

Each image holds one geometric shape (the label) with a random colour, size, position and rotation
on a noisy colour-gradient background. Images are rendered locally with NumPy, so
``tfds.load("keras_pvt_shapes")`` works without a network once `keras_pvt.data` is imported.
Pick a resolution with a named config (``"keras_pvt_shapes/32px"`` ... ``"/224px"``) or any size
with `shapes_config`.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import zlib
from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds

DATASET_NAME = "keras_pvt_shapes"
CLASS_NAMES = ("circle", "ring", "square", "triangle", "cross", "star")
SPLIT_SEEDS = {"train": 0, "test": 1}
CONFIG_NAME = re.compile(r"^(\d+)px(?:_(\d+)_(\d+))?$")  # "80px" or "80px_TRAIN_TEST"


@dataclasses.dataclass(kw_only=True)
class ShapesConfig(tfds.core.BuilderConfig):
    """Resolution and split sizes of one `keras_pvt_shapes` variant."""

    image_size: int = 64
    train_size: int = 3000
    test_size: int = 600


def shapes_config(image_size: int, train_size: int = 3000, test_size: int = 600) -> ShapesConfig:
    """The config for any square resolution and split sizes (one shared object per combination).

    Its name, ``"<size>px"`` or ``"<size>px_<train>_<test>"``, also works as a tfds config name:
    ``tfds.load("keras_pvt_shapes/80px_500_100")``.
    """
    return sized_config(DATASET_NAME, 16, (3000, 600), image_size, train_size, test_size)


def sized_config(
    dataset: str,
    min_size: int,
    default_sizes: tuple[int, int],
    image_size: int,
    train_size: int,
    test_size: int,
) -> ShapesConfig:
    """A validated config of a rendered dataset, named ``"<size>px"`` when the split sizes are
    `default_sizes` and ``"<size>px_<train>_<test>"`` otherwise (one shared object per name)."""
    if image_size < min_size:
        raise ValueError(f"{dataset} needs image_size >= {min_size}, got {image_size}.")
    if train_size < 1 or test_size < 1:
        raise ValueError(f"{dataset} needs at least one train and one test image.")
    name = f"{int(image_size)}px"
    if (train_size, test_size) != default_sizes:
        name += f"_{int(train_size)}_{int(test_size)}"
    return _config(dataset, name, int(image_size), int(train_size), int(test_size))


@functools.cache
def _config(dataset: str, name: str, image_size: int, train_size: int, test_size: int) -> ShapesConfig:
    return ShapesConfig(
        name=name,
        description=f"{dataset}: {image_size}x{image_size}, {train_size} train / {test_size} test images.",
        image_size=image_size,
        train_size=train_size,
        test_size=test_size,
    )


class KerasPvtShapes(tfds.core.GeneratorBasedBuilder):
    """Coloured geometric shapes on noisy backgrounds, generated locally and deterministically."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [shapes_config(size) for size in (32, 64, 96, 128, 224)]
    DEFAULT_BUILDER_CONFIG_NAME = "64px"
    config_for = staticmethod(shapes_config)  # (image_size[, train_size, test_size]) -> config

    @classmethod
    def get_builder_config(cls, name: str, version: str | None = None) -> ShapesConfig | None:
        """Named configs, plus any ``"<size>px[_<train>_<test>]"`` built on demand."""
        config = super().get_builder_config(name, version)
        match = CONFIG_NAME.match(name)
        if config is None and match:
            sizes = [int(g) for g in match.groups() if g is not None]
            config = cls.config_for(*sizes)
        return config

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.image_size
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(size, size, 3)),
                    "label": tfds.features.ClassLabel(names=list(CLASS_NAMES)),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://github.com/keras-pvt/keras-pvt",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        del dl_manager  # nothing to download
        config = self.builder_config
        return {
            "train": self._generate_examples("train", config.train_size),
            "test": self._generate_examples("test", config.test_size),
        }

    def _generate_examples(self, split: str, count: int) -> Iterator[tuple[int, dict]]:
        size = self.builder_config.image_size
        for index in range(count):
            image, label = render_example(size, SPLIT_SEEDS[split], index)
            yield index, {"image": image, "label": label}


def render_example(size: int, split_seed: int, index: int) -> tuple[np.ndarray, int]:
    """The `index`-th (image uint8 (size, size, 3), label) of a split; a pure function of its args."""
    rng = np.random.default_rng([zlib.crc32(DATASET_NAME.encode()), split_seed, index])
    label = int(rng.integers(len(CLASS_NAMES)))
    background = noisy_background(rng, size)
    radius = rng.uniform(0.2, 0.36) * size
    margin = radius + 1
    center = rng.uniform(margin, size - margin, size=2)
    mask = shape_mask(CLASS_NAMES[label], size, center, radius, rng.uniform(0, 2 * np.pi))
    colour = contrasting_colour(rng, background.mean(axis=(0, 1)))
    image = np.where(mask[..., None], colour, background)
    image = image + rng.normal(0, 10, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), label


def shape_mask(name: str, size: int, center: np.ndarray, radius: float, angle: float) -> np.ndarray:
    """Boolean (size, size) mask of shape `name` centred at `center` (x, y), rotated by `angle`."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    dx, dy = xs - center[0], ys - center[1]
    dist = np.hypot(dx, dy)
    theta = np.arctan2(dy, dx) - angle
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    if name == "circle":
        return dist <= radius
    if name == "ring":
        return (dist <= radius) & (dist >= 0.55 * radius)
    if name == "square":
        half = radius / np.sqrt(2)
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if name == "triangle":
        sector = np.mod(theta, 2 * np.pi / 3) - np.pi / 3
        return dist * np.cos(sector) <= radius * 0.5
    if name == "cross":
        arm = 0.3 * radius
        return ((np.abs(u) <= arm) & (np.abs(v) <= radius)) | ((np.abs(v) <= arm) & (np.abs(u) <= radius))
    if name == "star":
        return dist <= radius * (0.6 + 0.4 * np.cos(5 * theta))
    raise ValueError(f"Unknown shape {name!r}; choose one of {CLASS_NAMES}.")


def noisy_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random linear colour gradient with coarse blotches, float (size, size, 3) in [0, 255]."""
    start, end = rng.uniform(0, 255, size=(2, 3))
    direction = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    t = (xs * np.cos(direction) + ys * np.sin(direction) + 1) / 2
    gradient = start + (end - start) * t[..., None] * 0.6
    coarse = rng.normal(0, 18, size=(4, 4, 3))
    blotches = np.kron(coarse, np.ones((size // 4 + 1, size // 4 + 1, 1)))[:size, :size]
    return gradient + blotches


def contrasting_colour(rng: np.random.Generator, mean: np.ndarray) -> np.ndarray:
    """A random colour at least ~100 (L2, RGB) away from the background's mean colour."""
    for _ in range(32):
        colour = rng.uniform(0, 255, size=3)
        if np.linalg.norm(colour - mean) >= 100:
            return colour
    return 255.0 - mean


def free_centre(
    rng: np.random.Generator,
    size: int,
    radius: float,
    placed: list[tuple[np.ndarray, float]],
    min_gap: float,
    tries: int = 20,
) -> np.ndarray:
    """A centre keeping the whole shape inside the image and at least `min_gap` times the two radii
    from every shape already placed (the last candidate when none of `tries` is free: overlap is
    allowed, never forced)."""
    margin = radius + 1
    for _ in range(tries):
        center = rng.uniform(margin, size - margin, size=2)
        if all(np.hypot(*(center - c)) >= min_gap * (radius + r) for c, r in placed):
            break
    return center
