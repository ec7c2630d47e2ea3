"""Raw (image, label) datasets from tensorflow-datasets names and image folders, with clear errors.

Every source returns a `DataSource` of unbatched ``(uint8 image (H, W, 3), int64 label)`` pairs;
`keras_pvt.data.pipeline` turns them into batched, preprocessed training/validation pipelines.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import urllib.parse
from pathlib import Path

import tensorflow as tf
import tensorflow_datasets as tfds

# Importing the embedded builders registers them with tfds.
from keras_pvt.data.det_shapes import DET_DATASET_NAME
from keras_pvt.data.seg_shapes import SEG_DATASET_NAME
from keras_pvt.data.shapes import DATASET_NAME
from keras_pvt.images import FOLDER_DATASET_SUFFIXES

VALIDATION_SPLITS = ("validation", "val", "test")
# Rendered locally: nothing to download.
EMBEDDED_DATASETS = (DATASET_NAME, SEG_DATASET_NAME, DET_DATASET_NAME)
FOLDER_VAL_SPLITS = ("val", "validation", "test")
DEFAULT_VAL_FRACTION = 0.1
NETWORK_PROBE_TIMEOUT_S = 3.0
# Magic bytes of the formats tfds' ImageFolder reads (`FOLDER_DATASET_SUFFIXES`: JPEG and PNG).
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")
JPEG_END = b"\xff\xd9"  # the end-of-image marker
PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk's type and CRC
IMAGE_ENDS = (JPEG_END, PNG_END)


@dataclasses.dataclass
class DataSource:
    """Unbatched training and validation pairs plus the label names and split sizes."""

    name: str
    train: tf.data.Dataset
    val: tf.data.Dataset
    class_names: list[str]
    train_size: int
    val_size: int

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_source(
    dataset: str = DATASET_NAME,
    data_dir: str | None = None,
    download: bool = True,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    val_from_train: bool = False,
) -> DataSource:
    """A `DataSource` from a tfds name (``"tf_flowers"``, ``"keras_pvt_shapes/64px"``) or a folder.

    A folder must hold ``train/CLASS/*.jpg|png`` and optionally ``val/`` (or ``validation/``,
    ``test/``); without one, the last `val_fraction` of the (deterministically shuffled) training
    images is held out. A tfds dataset without a validation or test split is split the same way;
    `val_from_train` always holds out from ``train`` (keeping the test split unseen for a final
    evaluation with `keras_pvt.data.eval_pipeline`).
    """
    if os.path.isdir(os.path.expanduser(dataset)):
        source = from_image_folder(dataset, val_fraction)
    else:
        source = from_tfds(
            dataset,
            data_dir=data_dir,
            download=download,
            val_fraction=val_fraction,
            val_from_train=val_from_train,
        )
    if source.num_classes < 2:
        raise ValueError(
            f"Dataset {dataset!r} has {source.num_classes} class(es) {source.class_names}; a "
            f"classifier needs at least two. Add a folder per class (train/CLASS/*.jpg)."
        )
    return source


def from_tfds(
    name: str,
    data_dir: str | None = None,
    download: bool = True,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    val_from_train: bool = False,
) -> DataSource:
    """A tensorflow-datasets dataset by name; fails fast when it must be downloaded but cannot."""
    builder = tfds_builder(name, data_dir=data_dir, download=download)
    features = builder.info.features
    splits = builder.info.splits
    if "train" not in splits:
        raise ValueError(f"Dataset {name!r} has no 'train' split (splits: {list(splits)}).")
    val_split = None if val_from_train else next((s for s in VALIDATION_SPLITS if s in splits), None)
    if val_split is None:
        held_out = max(1, round(100 * val_fraction))
        train_split, val_split = f"train[:-{held_out}%]", f"train[-{held_out}%:]"
    else:
        train_split = "train"
    train = builder.as_dataset(split=train_split, as_supervised=True, shuffle_files=True)
    val = builder.as_dataset(split=val_split, as_supervised=True)
    return DataSource(
        name=name,
        train=train,
        val=val,
        class_names=list(features["label"].names),
        train_size=splits[train_split].num_examples,
        val_size=splits[val_split].num_examples,
    )


def tfds_builder(name: str, data_dir: str | None = None, download: bool = True) -> tfds.core.DatasetBuilder:
    """The prepared builder of an image-classification dataset (generated/downloaded if needed)."""
    builder = find_builder(
        name,
        data_dir,
        f"a catalogue name such as 'tf_flowers' or 'imagenette/160px', the embedded offline dataset "
        f"{DATASET_NAME!r}, or a folder path (train/CLASS/*.jpg)",
    )
    if not builder.is_prepared():
        prepare_builder(builder, name, download)
    features = builder.info.features
    if "label" not in features or not isinstance(features["label"], tfds.features.ClassLabel):
        raise ValueError(
            f"Dataset {name!r} has no integer class label (features: {list(features)}); "
            "choose an image-classification dataset."
        )
    return builder


def from_image_folder(root: str, val_fraction: float = DEFAULT_VAL_FRACTION) -> DataSource:
    """``root/train/CLASS/*.jpg`` (and optional ``root/val/...``) via `tfds.folder_dataset.ImageFolder`."""
    root = os.path.expanduser(root)
    if not os.path.isdir(os.path.join(root, "train")):
        raise FileNotFoundError(
            f"Image folder {root!r} has no 'train' sub-folder; lay it out as "
            f"{root}/train/CLASS/*.jpg (and optionally {root}/val/CLASS/*.jpg)."
        )
    check_images(root)
    builder = tfds.folder_dataset.ImageFolder(root, shape=(None, None, 3))
    splits = builder.info.splits
    class_names = list(builder.info.features["label"].names)
    train_count = splits["train"].num_examples
    if train_count == 0:
        raise ValueError(f"No {'/'.join(FOLDER_DATASET_SUFFIXES)} images under {root}/train/CLASS/.")
    train = builder.as_dataset(split="train", as_supervised=True, shuffle_files=False)
    val_split = next((s for s in FOLDER_VAL_SPLITS if s in splits), None)
    if val_split is not None:
        val = builder.as_dataset(split=val_split, as_supervised=True)
        val_count = splits[val_split].num_examples
    else:
        val_count = max(1, round(train_count * val_fraction))
        if val_count >= train_count:
            raise ValueError(
                f"{root}/train has only {train_count} image(s): too few to hold out a validation "
                f"set. Add images or a {root}/val folder."
            )
        val = train.skip(train_count - val_count)
        train = train.take(train_count - val_count)
        train_count -= val_count
    return DataSource(
        name=root,
        train=train,
        val=val,
        class_names=class_names,
        train_size=train_count,
        val_size=val_count,
    )


def check_images(root: str, paths: list[Path] | None = None) -> None:
    """Raise `ValueError` listing the image files (`paths`, default ``root/*/*/*``) that cannot be
    decoded, before any training.

    Cheap for large folders: each file's first and last bytes are read; only a file whose end is
    not a JPEG/PNG end marker (a truncated download, or extra bytes after the image) is decoded.
    """
    bad = []
    for path in sorted(Path(root).glob("*/*/*")) if paths is None else paths:
        if path.suffix.lower() not in FOLDER_DATASET_SUFFIXES:
            continue
        with open(path, "rb") as handle:
            head = handle.read(8)
            handle.seek(max(os.fstat(handle.fileno()).st_size - len(PNG_END), 0))
            tail = handle.read()
        if not any(head.startswith(signature) for signature in IMAGE_SIGNATURES):
            bad.append(f"{path} (not a JPEG or PNG)")
        elif not tail.endswith(IMAGE_ENDS) and not _decodes(path):
            bad.append(f"{path} (truncated or corrupt)")
    if bad:
        shown = "\n  ".join(bad[:10]) + (f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise ValueError(
            f"{len(bad)} file(s) under {root} are not decodable JPEG/PNG images:\n  {shown}\n"
            "Delete or re-encode them."
        )


def _decodes(path: Path) -> bool:
    try:
        tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
    except tf.errors.InvalidArgumentError:
        return False
    return True


def find_builder(name: str, data_dir: str | None, alternatives: str) -> tfds.core.DatasetBuilder:
    """`tfds.builder(name)` (nothing prepared yet), with the embedded builders registered; an
    unknown name raises `ValueError` suggesting `alternatives`."""
    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ValueError(f"Unknown tensorflow-datasets name {name!r}. Use {alternatives}.") from error


def prepare_builder(
    builder: tfds.core.DatasetBuilder, name: str, download: bool, offline_name: str = DATASET_NAME
) -> None:
    """Generate or download `builder`'s data, failing within seconds when the network is needed
    but unreachable (the error suggests the embedded dataset `offline_name`)."""
    data_dir = builder.data_dir_root if hasattr(builder, "data_dir_root") else builder.data_dir
    urls = _download_urls(builder)
    if urls and not download:
        raise FileNotFoundError(
            f"Dataset {name!r} is not prepared in {data_dir} and downloading is disabled. Run "
            f"`tfds build {name} --data_dir {data_dir}` on a machine with internet access and copy "
            "the folder here, or pass --data-dir pointing at a prepared copy."
        )
    unreachable = [host for host in _hosts(urls) if not _reachable(host)]
    if urls and len(unreachable) == len(_hosts(urls)):
        raise ConnectionError(
            f"Dataset {name!r} is not prepared in {data_dir} and its download server(s) "
            f"{sorted(unreachable)} cannot be reached (offline?). Prepare it on a connected "
            f"machine with `tfds build {name} --data_dir DIR` and pass --data-dir DIR, or use the "
            f"embedded offline dataset {offline_name!r}."
        )
    builder.download_and_prepare()


def _download_urls(builder: tfds.core.DatasetBuilder) -> list[str]:
    """The URLs the builder will download (from its registered checksums); [] if it downloads
    nothing (as the embedded dataset). Builders without a checksum file are assumed to download."""
    if isinstance(builder, tfds.core.GeneratorBasedBuilder) and builder.name in EMBEDDED_DATASETS:
        return []
    try:
        infos = builder.url_infos or {}
    except Exception:
        infos = {}
    return list(infos) or ["https://storage.googleapis.com"]


def _hosts(urls: list[str]) -> list[str]:
    return sorted({urllib.parse.urlparse(url).hostname or url for url in urls})


def _reachable(host: str, port: int = 443) -> bool:
    try:
        with socket.create_connection((host, port), timeout=NETWORK_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False
