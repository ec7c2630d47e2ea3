"""Raw detection datasets: COCO-format folders, tensorflow-datasets' ``coco/2017`` (and other tfds
names with the same features) and the embedded offline `keras_pvt_det_shapes`, with clear errors
and the fast offline failure of `keras_pvt.data.sources`.

Every source yields unbatched examples ``{"image": uint8 (H, W, 3), "image_id": int64, "boxes":
float32 (K, 4) x1, y1, x2, y2 pixels of the image as stored, "labels": int32 (K,) 0 .. classes - 1,
"is_crowd": bool (K,), "area": float32 (K,)}``; `det_pipeline` resizes, flips and batches them.
"""

from __future__ import annotations

import dataclasses
import glob
import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_pvt.data.det_coco_json import CocoImages, read_coco_json
from keras_pvt.data.det_shapes import DET_DATASET_NAME
from keras_pvt.data.sources import DEFAULT_VAL_FRACTION, VALIDATION_SPLITS, find_builder, prepare_builder

ALTERNATIVES = (
    "'coco/2017' (tensorflow-datasets), the embedded offline dataset "
    f"{DET_DATASET_NAME!r}, or a COCO folder ROOT/instances_*.json (or ROOT/annotations/) with its images "
    "in ROOT/images/ or ROOT/<json name without instances_>/"
)
VAL_WORDS = ("val", "validation", "test")


@dataclasses.dataclass
class DetectionSource:
    """Unbatched training and validation examples, the class names, the dataset's category id of
    each label (COCO's ids for a COCO json, ``label + 1`` otherwise) and the split sizes.

    `val_ground_truth` is the validation json itself for a COCO folder (its evaluation is the
    official one); None elsewhere, where the evaluation builds it from the examples."""

    name: str
    train: tf.data.Dataset
    val: tf.data.Dataset
    class_names: list[str]
    category_ids: list[int]
    train_size: int
    val_size: int
    val_ground_truth: dict | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_detection_source(
    dataset: str = DET_DATASET_NAME,
    *,
    data_dir: str | None = None,
    download: bool = True,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    invalid_boxes: str = "error",
    val_from_train: bool = False,
) -> DetectionSource:
    """A `DetectionSource` from a COCO folder, a tfds name (``"coco/2017"``,
    ``"keras_pvt_det_shapes/128px"``) or the bare embedded name (its default 128 px config).

    A folder with one json is split: the last `val_fraction` of its images (sorted by id) validate.
    `invalid_boxes` ("error" or "skip") is for boxes wholly outside their image (`det_coco_json`).
    A tfds dataset validates on its validation/test split, else (and always with `val_from_train`,
    keeping the test split unseen for a final evaluation) on the last `val_fraction` of ``train``.
    """
    if os.path.isdir(os.path.expanduser(dataset)):
        return _from_folder(os.path.expanduser(dataset), val_fraction, invalid_boxes)
    builder = find_builder(dataset, data_dir, ALTERNATIVES)
    _check_features(dataset, builder.info.features)
    if not builder.is_prepared():
        if builder.name == DET_DATASET_NAME:
            builder.download_and_prepare()  # rendered locally
        else:
            prepare_builder(builder, dataset, download, offline_name=DET_DATASET_NAME)
    splits = builder.info.splits
    if "train" not in splits:
        raise ValueError(f"Dataset {dataset!r} has no 'train' split (splits: {list(splits)}).")
    val_split = None if val_from_train else next((s for s in VALIDATION_SPLITS if s in splits), None)
    train_split = "train"
    if val_split is None:
        held_out = max(1, round(100 * val_fraction))
        train_split, val_split = f"train[:-{held_out}%]", f"train[-{held_out}%:]"
    names = list(_object_features(builder.info.features)["label"].names)
    return DetectionSource(
        name=dataset,
        train=_tfds_examples(builder, train_split, shuffle_files=True),
        val=_tfds_examples(builder, val_split),
        class_names=names,
        category_ids=list(range(1, len(names) + 1)),
        train_size=splits[train_split].num_examples,
        val_size=splits[val_split].num_examples,
    )


def _check_features(name: str, features: tfds.features.FeaturesDict) -> None:
    objects = _object_features(features)
    if "image" not in features or objects is None or "bbox" not in objects or "label" not in objects:
        raise ValueError(
            f"Dataset {name!r} has no boxes in coco/2017's layout (features: {list(features)}; needed "
            f"'image' and 'objects' with 'bbox' and 'label'). Use {ALTERNATIVES}."
        )


def _object_features(features: tfds.features.FeaturesDict) -> tfds.features.FeaturesDict | None:
    """The per-object features (the dict inside ``objects``' Sequence), None without ``objects``."""
    if "objects" not in features:
        return None
    objects = features["objects"]
    return getattr(objects, "feature", objects)


def _tfds_examples(
    builder: tfds.core.DatasetBuilder, split: str, shuffle_files: bool = False
) -> tf.data.Dataset:
    data = builder.as_dataset(split=split, shuffle_files=shuffle_files)
    features = builder.info.features
    has_id = "image/id" in features
    objects = _object_features(features)

    def convert(example: dict) -> dict:
        image = example["image"]
        size = tf.cast(tf.shape(image)[:2], tf.float32)
        bbox = tf.reshape(example["objects"]["bbox"], (-1, 4))  # normalised ymin, xmin, ymax, xmax
        boxes = tf.stack(
            [bbox[:, 1] * size[1], bbox[:, 0] * size[0], bbox[:, 3] * size[1], bbox[:, 2] * size[0]], axis=1
        )
        count = tf.shape(boxes)[0]
        crowd = example["objects"]["is_crowd"] if "is_crowd" in objects else tf.zeros((count,), tf.bool)
        area = (
            tf.cast(example["objects"]["area"], tf.float32)
            if "area" in objects
            else (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        )
        return {
            "image": image,
            "image_id": tf.cast(example["image/id"], tf.int64) if has_id else tf.constant(-1, tf.int64),
            "boxes": boxes,
            "labels": tf.cast(example["objects"]["label"], tf.int32),
            "is_crowd": tf.cast(crowd, tf.bool),
            "area": area,
        }

    data = data.map(convert, num_parallel_calls=tf.data.AUTOTUNE)
    if not has_id:  # the evaluation needs one id per image: its position in the split
        data = data.enumerate().map(lambda index, example: {**example, "image_id": index})
    return data


def _from_folder(root: str, val_fraction: float, invalid_boxes: str) -> DetectionSource:
    """A COCO folder: ``instances_<train name>.json`` and ``instances_<val name>.json`` (a name
    holding "train" or "val"/"test"), or a single json split by image id."""
    jsons = sorted(
        glob.glob(os.path.join(root, "instances_*.json"))
        + glob.glob(os.path.join(root, "annotations", "instances_*.json"))
    )
    if not jsons:
        raise ValueError(
            f"No instances_*.json in {root} or {root}/annotations. A detection folder is {ALTERNATIVES}."
        )
    train_json = [path for path in jsons if "train" in _stem(path)]
    val_json = [path for path in jsons if any(word in _stem(path) for word in VAL_WORDS)]
    if len(train_json) > 1 or len(val_json) > 1:
        raise ValueError(
            f"{root} holds several training or validation jsons ({[os.path.basename(p) for p in jsons]}); "
            "keep one instances_<train>.json and one instances_<val>.json."
        )
    if train_json and val_json:
        train = read_coco_json(train_json[0], _image_dir(root, train_json[0]), invalid_boxes)
        val = read_coco_json(val_json[0], _image_dir(root, val_json[0]), invalid_boxes)
        if val.category_ids != train.category_ids:
            raise ValueError(
                f"{train_json[0]} and {val_json[0]} list different categories ({train.category_ids} vs "
                f"{val.category_ids}); both need the same 'categories'."
            )
    elif len(jsons) == 1:
        everything = read_coco_json(jsons[0], _image_dir(root, jsons[0]), invalid_boxes)
        order = np.argsort(everything.image_ids, kind="stable")
        held_out = max(1, round(len(order) * val_fraction))
        if len(order) < 2:
            raise ValueError(
                f"{jsons[0]} has {len(order)} image(s); a train/validation split needs two or more."
            )
        is_val = np.zeros(len(order), bool)
        is_val[order[-held_out:]] = True
        train, val = everything.select(~is_val), everything.select(is_val)
    else:
        raise ValueError(
            f"Cannot tell the training json from the validation json in {root} "
            f"({[os.path.basename(p) for p in jsons]}): name them instances_train*.json and "
            "instances_val*.json."
        )
    train = train.select(train.trainable())
    if not len(train.paths):
        raise ValueError(
            f"{root}: no training image has an annotation and both sides >= 32 px; nothing to train on."
        )
    return DetectionSource(
        name=root,
        train=_folder_examples(train, shuffle=True),
        val=_folder_examples(val, shuffle=False),
        class_names=train.class_names,
        category_ids=train.category_ids,
        train_size=len(train.paths),
        val_size=len(val.paths),
        val_ground_truth=val.ground_truth,
    )


def _stem(path: str) -> str:
    return os.path.basename(path)[len("instances_") : -len(".json")].lower()


def _image_dir(root: str, json_path: str) -> str:
    """``ROOT/<name>`` or ``ROOT/images/<name>`` (COCO's ``train2017/``), else ``ROOT/images``."""
    stem = os.path.basename(json_path)[len("instances_") : -len(".json")]
    for candidate in (os.path.join(root, stem), os.path.join(root, "images", stem)):
        if os.path.isdir(candidate):
            return candidate
    return os.path.join(root, "images")


def _folder_examples(images: CocoImages, shuffle: bool) -> tf.data.Dataset:
    """Decoded examples; each image is checked against the json's size when it is read."""
    counts = [len(labels) for labels in images.labels]
    columns = {
        "path": tf.constant(images.paths, tf.string),
        "image_id": tf.constant(images.image_ids, tf.int64),
        "size": tf.constant(images.sizes, tf.int32),
        "boxes": tf.RaggedTensor.from_row_lengths(
            np.concatenate(images.boxes or [np.zeros((0, 4))]).astype(np.float32), counts
        ),
        "labels": tf.RaggedTensor.from_row_lengths(
            np.concatenate(images.labels or [np.zeros(0)]).astype(np.int32), counts
        ),
        "is_crowd": tf.RaggedTensor.from_row_lengths(
            np.concatenate(images.crowd or [np.zeros(0)]).astype(bool), counts
        ),
        "area": tf.RaggedTensor.from_row_lengths(
            np.concatenate(images.areas or [np.zeros(0)]).astype(np.float32), counts
        ),
    }
    data = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle:
        data = data.shuffle(len(images.paths), seed=0, reshuffle_each_iteration=True)  # cheap: paths only
    return data.map(_decode, num_parallel_calls=tf.data.AUTOTUNE)


def _decode(row: dict) -> dict:
    image = tf.io.decode_image(tf.io.read_file(row["path"]), channels=3, expand_animations=False)
    matches = tf.reduce_all(tf.shape(image)[:2] == row["size"])
    message = tf.strings.join(
        [
            row["path"],
            " is ",
            tf.strings.as_string(tf.shape(image)[0]),
            "x",
            tf.strings.as_string(tf.shape(image)[1]),
            " pixels but its json entry says ",
            tf.strings.as_string(row["size"][0]),
            "x",
            tf.strings.as_string(row["size"][1]),
            " (height x width): correct the json's height/width or the image.",
        ]
    )
    with tf.control_dependencies([tf.debugging.Assert(matches, [message])]):
        image = tf.identity(image)
    return {
        "image": tf.ensure_shape(image, (None, None, 3)),
        "image_id": row["image_id"],
        "boxes": tf.reshape(row["boxes"], (-1, 4)),
        "labels": row["labels"],
        "is_crowd": row["is_crowd"],
        "area": row["area"],
    }
