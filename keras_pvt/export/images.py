"""Image sources for calibration and verification: arrays, image folders, tf.data / tfds splits.

Every source becomes a float32 NHWC array of model-ready images. Raw pixels (uint8 arrays, image
files, uint8 dataset elements) go through `preprocess` (by default what the model takes: ImageNet
mean/std normalisation, or none for a model that normalises itself, `include_preprocessing=True`);
float arrays and float dataset elements are taken as model-ready (raw pixels for such a model).
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from keras_pvt.images import IMAGE_SUFFIXES, preprocess_input, takes_raw_pixels

TFDS_PREFIX = "tfds:"
DEFAULT_IMAGE_SIZE = (224, 224)
DEFAULT_VERIFY_IMAGES = 16

Preprocess = Callable[[np.ndarray], np.ndarray]


def load_images(
    source: Any,
    *,
    image_size: tuple[int, int] | None = None,
    limit: int | None = None,
    preprocess: Preprocess | None = None,
    data_dir: str | None = None,
    model: Any = None,
) -> np.ndarray:
    """Model-ready float32 images (N, H, W, C) from `source`.

    Args:
        source: an array (N, H, W, C) or (H, W, C); a folder of .jpg/.png/.bmp/.gif files (searched
            recursively, sorted); a ``tf.data.Dataset`` yielding images, ``(image, label)`` pairs or
            dicts with an ``"image"`` key (batched or not); or ``"tfds:NAME:SPLIT"`` for a tfds split
            already prepared on this machine (never downloaded).
        image_size: (height, width) to resize to; None keeps array sizes and uses 224x224 for files.
        limit: take at most this many images.
        preprocess: applied to raw pixels; default `keras_pvt.preprocess_input`, or a float32 cast
            when `model` normalises itself.
        data_dir: tensorflow-datasets folder for a ``tfds:`` source (default: tfds' own).
        model: the model the images are for: one that takes raw pixels (`takes_raw_pixels`) gets
            them unnormalised, and float images below 0 (normalised already) are refused for it.
    """
    if model is not None and takes_raw_pixels(model):
        return _raw_pixels(
            load_images(
                source,
                image_size=image_size,
                limit=limit,
                preprocess=preprocess or _as_float32,
                data_dir=data_dir,
            )
        )
    preprocess = preprocess or preprocess_input
    if limit is not None and limit < 1:
        raise ValueError(f"The number of images must be positive, got {limit}.")
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text.startswith(TFDS_PREFIX):
            return _from_dataset(_tfds_split(text, data_dir), image_size, limit, preprocess)
        return _from_folder(Path(text), image_size or DEFAULT_IMAGE_SIZE, limit, preprocess)
    if isinstance(source, np.ndarray) or _is_array_like(source):
        return _from_array(np.asarray(source), image_size, limit, preprocess)
    if _is_dataset(source):
        return _from_dataset(source, image_size, limit, preprocess)
    raise TypeError(
        "Images must be an array (N, H, W, C), a folder path, a tf.data.Dataset or 'tfds:NAME:SPLIT'; "
        f"got {type(source).__name__}."
    )


def random_images(
    count: int, image_size: tuple[int, int], channels: int = 3, seed: int = 0, *, raw_pixels: bool = False
) -> np.ndarray:
    """Deterministic stand-ins for photos: smooth random fields (blobs 1/8 of the image across, a
    little fine noise) with zero mean and unit variance like preprocessed photos, or with
    `raw_pixels` integer pixels in [0, 255] as float32 (for a model that normalises itself).

    Smooth, not white, noise: int8 files calibrated on photos meet activations in their calibrated
    ranges, as with photos, while files calibrated on blank images still see what they clip.
    """
    rng = np.random.default_rng(seed)
    height, width = (int(side) for side in image_size)
    coarse = (count, max(-(-height // 8), 2), max(-(-width // 8), 2), channels)
    fields = tf.image.resize(rng.standard_normal(coarse).astype(np.float32), (height, width), "bicubic")
    fields = fields.numpy() / max(float(np.std(fields)), 1e-6)
    images = fields + 0.25 * rng.standard_normal(fields.shape).astype(np.float32)
    images = (images / max(float(np.std(images)), 1e-6)).astype(np.float32)
    if raw_pixels:
        return np.clip(np.round(127.5 + 58.0 * images), 0, 255).astype(np.float32)
    return images


def verification_images(
    model: Any,
    spec: Any,
    size: tuple[int, int] | None,
    count: int,
    *,
    given: Any = None,
    held_out: np.ndarray | None = None,
    preprocess: Preprocess | None = None,
    data_dir: str | None = None,
) -> np.ndarray:
    """The images an export is verified on, trimmed to a multiple of the input's fixed batch.

    `given` images (any `load_images` source) are used as they are. Otherwise `held_out` images
    (representative images that were not calibrated on, at most `count`) come first, topped up to
    `count` with seeded `random_images` of their size (else `size`, else 224x224).
    """
    batch = spec.shape[0] or 1
    if given is not None:
        images = load_images(given, image_size=size, preprocess=preprocess, data_dir=data_dir, model=model)
    else:
        images = np.zeros((0, *(size or DEFAULT_IMAGE_SIZE), spec.shape[3]), np.float32)
        if held_out is not None and len(held_out):
            images = np.asarray(held_out[:count], np.float32)
        missing = max(count, batch) - len(images)
        if missing > 0:
            generated = random_images(
                missing, images.shape[1:3], spec.shape[3], raw_pixels=takes_raw_pixels(model)
            )
            images = np.concatenate([images, generated])
    usable = len(images) - len(images) % batch
    if usable < 1:
        raise ValueError(f"Verification needs at least {batch} images for the fixed batch {batch}.")
    return images[:usable]


def check_calibration_images(images: np.ndarray) -> None:
    """Refuse calibration images that are all flat (one value per channel, e.g. all black): int8
    ranges calibrated on them are those of a blank image, and real images would be clipped."""
    flat = np.ptp(images.reshape(len(images), -1, images.shape[-1]), axis=1).max(axis=-1) == 0
    if len(images) and bool(np.all(flat)):
        raise ValueError(
            f"The {len(images)} calibration image(s) are all flat (every pixel of each image has "
            "the same value per channel, e.g. all black): int8 ranges calibrated on them would clip "
            "every real image. Calibrate on real images of the kind the model will see."
        )


def _as_float32(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32)


def _raw_pixels(images: np.ndarray) -> np.ndarray:
    """`images` for a model that normalises itself: refused if they hold values below 0."""
    lowest = float(images.min())
    if lowest < 0:
        raise ValueError(
            f"The images have values down to {lowest:.3g}, but the model normalises its inputs itself "
            "(include_preprocessing=True) and takes raw pixels in [0, 255]: these look normalised "
            "already. Pass the unnormalised images (uint8, or float 0-255)."
        )
    return images


def _is_array_like(source: Any) -> bool:
    return hasattr(source, "__array__") and not _is_dataset(source)


def _is_dataset(source: Any) -> bool:
    return isinstance(source, tf.data.Dataset)


def _finish(images: np.ndarray, image_size: tuple[int, int] | None, preprocess: Preprocess) -> Any:
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(f"Images must be (N, H, W, C) or (H, W, C); got shape {images.shape}.")
    raw = images.dtype == np.uint8
    if image_size is not None and tuple(images.shape[1:3]) != tuple(image_size):
        images = _resize_keep_dtype(images, image_size)
    images = preprocess(images) if raw else images.astype(np.float32)
    if not np.all(np.isfinite(images)):
        raise ValueError("The images contain NaN or Inf values.")
    return images


def _from_array(images: np.ndarray, image_size: Any, limit: int | None, preprocess: Preprocess) -> np.ndarray:
    if images.size == 0:
        raise ValueError("The image array is empty.")
    if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"Images must be uint8 pixels or float32 model inputs, got {images.dtype}.")
    images = images[None] if images.ndim == 3 else images
    return _finish(images[:limit] if limit else images, image_size, preprocess)


def _image_files(folder: Path) -> list[Path]:
    """Image files under `folder` (recursive, sorted)."""
    if not folder.exists():
        raise FileNotFoundError(f"Image folder {str(folder)!r} does not exist.")
    if not folder.is_dir():
        raise ValueError(
            f"{str(folder)!r} is not a folder: give a folder of .jpg/.png images or 'tfds:NAME:SPLIT'."
        )
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(
            f"No images ({', '.join(IMAGE_SUFFIXES)}) found under {str(folder)!r}; "
            "representative data needs at least one."
        )
    return files


def _from_folder(
    folder: Path, image_size: tuple[int, int], limit: int | None, preprocess: Preprocess
) -> np.ndarray:
    batch = []
    for path in _image_files(folder)[:limit]:
        try:
            image = tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
        except tf.errors.OpError as error:
            raise ValueError(f"Cannot decode image {str(path)!r}: {error.message}") from error
        batch.append(tf.image.resize(tf.cast(image, tf.float32), image_size).numpy())
    pixels = np.clip(np.round(np.stack(batch)), 0, 255).astype(np.uint8)
    return _finish(pixels, None, preprocess)


def _tfds_split(spec: str, data_dir: str | None = None) -> Any:
    """``"tfds:NAME:SPLIT"`` -> the prepared split as a dataset; fails fast if not on disk."""
    parts = spec[len(TFDS_PREFIX) :].split(":")
    if len(parts) != 2 or not all(parts):
        raise ValueError(
            f"{spec!r}: a tfds source is written 'tfds:NAME:SPLIT', e.g. 'tfds:imagenette/160px:"
            "validation[:64]'."
        )
    import tensorflow_datasets as tfds

    with contextlib.suppress(ImportError):  # registers the embedded offline `keras_pvt_shapes`
        importlib.import_module("keras_pvt.data")
    name, split = parts
    try:
        return tfds.load(name, split=split, data_dir=data_dir, download=False, shuffle_files=False)
    except Exception as error:  # tfds raises several unrelated types for "not prepared"
        raise ValueError(
            f"tfds split {name}:{split} is not available offline ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}). Prepare it first "
            "(`tfds build`, or set TFDS_DATA_DIR); export never downloads."
        ) from error


def _element_image(element: Any) -> Any:
    if isinstance(element, dict):
        if "image" not in element:
            raise ValueError(f"Dataset elements are dicts without an 'image' key: {sorted(element)}.")
        return element["image"]
    if isinstance(element, (tuple, list)):
        return element[0]
    return element


def _from_dataset(dataset: Any, image_size: Any, limit: int | None, preprocess: Preprocess) -> np.ndarray:
    chunks: list[np.ndarray] = []
    count = 0
    for element in dataset:
        image = np.asarray(_element_image(element))
        image = image[None] if image.ndim == 3 else image
        target = image_size or (chunks[0].shape[1:3] if chunks else None)
        if target is not None and tuple(image.shape[1:3]) != tuple(target):
            image = _resize_keep_dtype(image, target)
        chunks.append(image)
        count += len(image)
        if limit is not None and count >= limit:
            break
    if not chunks:
        raise ValueError("The dataset is empty: representative data needs at least one image.")
    return _finish(np.concatenate(chunks)[:limit], None, preprocess)


def _resize_keep_dtype(images: np.ndarray, size: Any) -> np.ndarray:
    resized = tf.image.resize(images.astype(np.float32), tuple(size)).numpy()
    if images.dtype == np.uint8:
        return np.clip(np.round(resized), 0, 255).astype(np.uint8)
    return resized.astype(images.dtype)
