"""What a detection run reads (`DetectionDataOptions`) and the detector it trains
(`DetectorOptions`); `RunOptions` and `DetectionRecipe` hold the rest. A bad value raises
`ValueError` when the options are made, before any work."""

from __future__ import annotations

import dataclasses
from typing import Any

from keras_pvt.data.det_pipeline import DetectionPipelines
from keras_pvt.data.det_shapes import DET_DATASET_NAME
from keras_pvt.data.sources import DEFAULT_VAL_FRACTION
from keras_pvt.detection.head import CLS_OUTPUT
from keras_pvt.images import parse_image_size
from keras_pvt.limits import MAX_WIDTH, integer, number

DETECTION_OUTPUT = "runs/retinanet"
DETECTION_EPOCHS = 12  # the 1x schedule
INVALID_BOXES = ("error", "skip")


@dataclasses.dataclass(frozen=True)
class DetectionDataOptions:
    """The images and boxes of a run and how they are fed (see
    `keras_pvt.data.det_pipeline.make_detection_pipelines`).

    Attributes:
        dataset: a COCO folder, a tfds name with boxes (``"coco/2017"``), the embedded offline
            ``"keras_pvt_det_shapes[/128px]"`` (the bare name renders at the training size), or
            ready `DetectionPipelines` made with RetinaNet's targets (their image and batch size
            then replace these fields).
        image_size: each image is resized into it keeping its aspect ratio, then padded: a side
            or (height, width) (COCO as mmdet: (800, 1333)).
        batch_size: global batch size (split over replicas).
        data_dir, download: the tensorflow-datasets folder; False: never download.
        augment, shuffle, cache: horizontal flip; shuffling; caching the decoded images.
        val_fraction: a COCO folder with a single json validates on this fraction of its images.
        invalid_boxes: "error" refuses COCO boxes wholly outside their image, "skip" drops them.
    """

    dataset: str | DetectionPipelines = DET_DATASET_NAME
    image_size: int | tuple[int, int] = 128
    batch_size: int = 8
    data_dir: str | None = None
    download: bool = True
    augment: bool = True
    shuffle: bool = True
    cache: bool = False
    val_fraction: float = DEFAULT_VAL_FRACTION
    invalid_boxes: str = "error"

    def __post_init__(self) -> None:
        if isinstance(self.dataset, DetectionPipelines):  # ready pipelines decide these
            object.__setattr__(self, "image_size", (self.dataset.height, self.dataset.width))
            object.__setattr__(self, "batch_size", self.dataset.batch_size)
            _require_targets(self.dataset)
        integer("batch_size", self.batch_size)
        if not isinstance(self.image_size, int):
            object.__setattr__(self, "image_size", parse_image_size(self.image_size))
        integer("image_size (smaller side)", min(self.sides))
        number("val_fraction", self.val_fraction, 0.0, 1.0, above=True, below=True)
        if self.invalid_boxes not in INVALID_BOXES:
            raise ValueError(f"invalid_boxes must be one of {INVALID_BOXES}, got {self.invalid_boxes!r}.")

    @property
    def sides(self) -> tuple[int, int]:
        """(height, width) the images are resized into."""
        size = self.image_size
        return (size, size) if isinstance(size, int) else size


@dataclasses.dataclass(frozen=True)
class DetectorOptions:
    """The RetinaNet `keras_pvt.RetinaNet` builds on the backbone (defaults: the paper's).

    Attributes:
        backbone_weights: the backbone's starting weights when `RunOptions.weights` is not a whole
            detector: anything ``PVT_V2(weights=...)`` takes ("imagenet", a classification
            checkpoint or ``.keras``).
        fpn_channels, head_channels, stacked_convs: the neck's width, the head's width and its
            convs per branch (256, 256, 4).
    """

    backbone_weights: str | None = None
    fpn_channels: int = 256
    head_channels: int = 256
    stacked_convs: int = 4

    def __post_init__(self) -> None:
        integer("fpn_channels", self.fpn_channels, 1, MAX_WIDTH)
        integer("head_channels", self.head_channels, 1, MAX_WIDTH)
        integer("stacked_convs", self.stacked_convs, 0, 64)


def _require_targets(pipes: DetectionPipelines) -> None:
    targets: Any = pipes.train.element_spec[1]
    if not isinstance(targets, dict) or CLS_OUTPUT not in targets:
        raise ValueError(
            "These DetectionPipelines yield boxes, not RetinaNet's training targets: make them with "
            "make_detection_pipelines(..., retinanet_targets=True) (the default)."
        )
