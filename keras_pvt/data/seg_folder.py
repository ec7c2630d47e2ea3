"""A folder of image/mask pairs as a segmentation source, checked before any training.

Layouts (masks: ``masks/`` or ``annotations/``; splits: ``train``/``training``, ``val``/``validation``):

- ``ROOT/images/*.jpg|png`` + ``ROOT/masks/*.png`` with the same stems (a deterministic
  ``val_fraction`` of the pairs is held out for validation);
- ``ROOT/train/images`` + ``ROOT/train/masks`` (and ``ROOT/val/...``);
- ``ROOT/images/training`` + ``ROOT/annotations/training`` (and ``validation``): ADEChallengeData2016.

Masks are 8-bit single-channel PNGs of class indices (255 = ignore). ``ROOT/classes.txt`` (one name
per line, in label order after ``reduce_zero_label``) names the classes; without it their number is
inferred from the masks. Every file is checked before training: here from its header and end
bytes, then the masks' labels by one decoding pass (`seg_folder_labels`).
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import numpy as np

from keras_pvt.data.sources import check_images
from keras_pvt.images import FOLDER_DATASET_SUFFIXES

IMAGE_DIR = "images"
MASK_DIRS = ("masks", "annotations")
SPLIT_DIRS = {"train": ("train", "training"), "val": ("val", "validation")}
CLASSES_FILE = "classes.txt"
ADE20K_FOLDER = "ADEChallengeData2016"  # reduce_zero_label defaults to on for it
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOUR_TYPES = {0: "greyscale", 2: "RGB", 3: "palette", 4: "greyscale+alpha", 6: "RGBA"}
SHOWN = 5  # offending files listed in an error


@dataclasses.dataclass
class FolderPairs:
    """The checked (image path, mask path) pairs of each split, and the class names if given."""

    root: Path
    splits: dict[str, tuple[list[str], list[str]]]
    class_names: list[str] | None


def find_pairs(root: str, val_fraction: float) -> FolderPairs:
    """All image/mask pairs under `root` by split; `ValueError`/`FileNotFoundError` naming what to fix."""
    path = Path(root).expanduser()
    dirs = _split_dirs(path)
    splits = {split: _pairs(images, masks) for split, (images, masks) in dirs.items()}
    if "val" not in splits:
        splits = _hold_out(path, splits["train"], val_fraction)
    for split, (images, masks) in splits.items():
        if not images:
            raise ValueError(f"No image/mask pairs in the {split!r} split of {path}.")
        _check_files(path, images, masks)
    return FolderPairs(root=path, splits=splits, class_names=_class_names(path))


def default_reduce_zero_label(root: str) -> bool:
    """ADE20K's folder (ADEChallengeData2016: 0 = "other") reduces the zero label by default."""
    return Path(root).expanduser().resolve().name == ADE20K_FOLDER


def _split_dirs(root: Path) -> dict[str, tuple[Path, Path]]:
    found = {}
    for split, names in SPLIT_DIRS.items():
        for name in names:
            for mask_dir in MASK_DIRS:
                for images, masks in (
                    (root / name / IMAGE_DIR, root / name / mask_dir),
                    (root / IMAGE_DIR / name, root / mask_dir / name),
                ):
                    if split not in found and images.is_dir() and masks.is_dir():
                        found[split] = (images, masks)
    if "train" not in found:
        for mask_dir in MASK_DIRS:
            if (root / IMAGE_DIR).is_dir() and (root / mask_dir).is_dir():
                return {"train": (root / IMAGE_DIR, root / mask_dir)}
        raise FileNotFoundError(
            f"{root} is not a folder of image/mask pairs. Lay it out as {root}/images/*.jpg + "
            f"{root}/masks/*.png (same stems), or {root}/train/images + {root}/train/masks (and "
            f"{root}/val/...), or ADE20K's images/training + annotations/training."
        )
    return found


def _pairs(image_dir: Path, mask_dir: Path) -> tuple[list[str], list[str]]:
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in FOLDER_DATASET_SUFFIXES)
    missing = [p.name for p in images if not (mask_dir / f"{p.stem}.png").is_file()]
    if missing:
        examples = sorted(p.name for p in mask_dir.glob("*"))[:3]
        raise ValueError(
            f"{len(missing)} image(s) in {image_dir} have no mask {mask_dir}/STEM.png: "
            f"{_listed(missing)}. Add the masks (same file stem, .png) or remove those images"
            + (f" (masks there are named like {examples})." if examples else f" ({mask_dir} is empty).")
        )
    return [str(p) for p in images], [str(mask_dir / f"{p.stem}.png") for p in images]


def _hold_out(
    root: Path, pairs: tuple[list[str], list[str]], val_fraction: float
) -> dict[str, tuple[list[str], list[str]]]:
    """Hold out a seeded random `val_fraction` of the pairs (the same on every run and machine)."""
    images, masks = pairs
    count = max(1, round(len(images) * val_fraction))
    if count >= len(images):
        raise ValueError(
            f"{root} has only {len(images)} image/mask pair(s): too few to hold out a validation set. "
            f"Add pairs or a {root}/val/images + {root}/val/masks folder."
        )
    held_out = set(np.random.default_rng(0).permutation(len(images))[:count].tolist())
    split = {"train": ([], []), "val": ([], [])}
    for index, (image, mask) in enumerate(zip(images, masks)):
        target = split["val" if index in held_out else "train"]
        target[0].append(image)
        target[1].append(mask)
    return split


def _check_files(root: Path, images: list[str], masks: list[str]) -> None:
    """Refuse undecodable images, masks that are not 8-bit greyscale PNGs, pairs of different sizes
    and truncated masks, from the files' first and last bytes (a file whose end is not a JPEG/PNG
    end marker is decoded to be sure); the masks' labels are checked by `seg_folder_labels`."""
    check_images(str(root), [Path(p) for p in images])
    bad_masks, mismatched = [], []
    for image, mask in zip(images, masks):
        problem = _mask_problem(Path(mask))
        if problem:
            bad_masks.append(f"{mask} ({problem})")
            continue
        image_size, mask_size = image_height_width(Path(image)), image_height_width(Path(mask))
        if image_size is not None and image_size != mask_size:
            mismatched.append(f"{Path(image).name} {image_size} vs mask {mask_size}")
    if bad_masks:
        raise ValueError(
            f"{len(bad_masks)} mask(s) are not 8-bit single-channel PNGs of class indices: "
            f"{_listed(bad_masks)}. Save each mask as a greyscale PNG whose pixel values are the "
            "class indices (255 = ignore); for a palette PNG: "
            "PIL.Image.fromarray(numpy.array(PIL.Image.open(path))).save(path)."
        )
    if mismatched:
        raise ValueError(
            f"{len(mismatched)} image/mask pair(s) differ in size (height, width): "
            f"{_listed(mismatched)}. Each mask must have its image's size."
        )
    check_images(str(root), [Path(p) for p in masks])  # truncated masks: their ends, read cheaply


def _mask_problem(path: Path) -> str | None:
    """Why the PNG at `path` is not a usable mask, from its header; None when it is."""
    with open(path, "rb") as handle:
        head = handle.read(26)
    if not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return "not a PNG: masks must be lossless PNG files"
    depth, colour = head[24], head[25]
    if colour != 0:
        kind = PNG_COLOUR_TYPES.get(colour, f"colour type {colour}")
        hint = ": TensorFlow decodes its colours, not its indices" if colour == 3 else ""
        return f"{kind} PNG{hint}"
    if depth != 8:
        return f"{depth}-bit: masks must be 8-bit (values 0..255)"
    return None


def image_height_width(path: Path) -> tuple[int, int] | None:
    """(height, width) from a PNG or JPEG header without decoding; None if not found."""
    with open(path, "rb") as handle:
        data = handle.read(1 << 16)
        if data.startswith(PNG_SIGNATURE):
            width, height = struct.unpack(">II", data[16:24])
            return height, width
        if not data.startswith(b"\xff\xd8"):
            return None
        size = _jpeg_height_width(data)
        return size if size is not None else _jpeg_height_width(data + handle.read())  # large EXIF


def _jpeg_height_width(data: bytes) -> tuple[int, int] | None:
    """Walk the JPEG segments to the first start-of-frame marker (SOF0-SOF15 except DHT/JPG/DAC).

    TensorFlow's `extract_jpeg_shape` gives the same sizes but reads every segment up to the scan,
    costs several times more per file and, given only the file's start, fails with libjpeg's
    message on stderr (tests/test_seg_folder_headers.py)."""
    offset = 2
    while offset + 9 <= len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        length = struct.unpack(">H", data[offset + 2 : offset + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return height, width
        offset += 2 + length
    return None


def _class_names(root: Path) -> list[str] | None:
    path = root / CLASSES_FILE
    if not path.is_file():
        return None
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) < 2:
        raise ValueError(
            f"{path} names {len(names)} class(es); list at least two, one per line, in label order."
        )
    return names


def _listed(items: list[str]) -> str:
    more = f" ... and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more
