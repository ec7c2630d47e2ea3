"""What a segmentation run reads (`SegmentationDataOptions`) and the segmenter it trains
(`SegmenterOptions`); `RunOptions` and `SegmentationRecipe` hold the rest. A bad value raises
`ValueError` when the options are made, before any work."""

from __future__ import annotations

import dataclasses

from keras_pvt.data.seg_pipeline import SegmentationPipelines
from keras_pvt.data.seg_shapes import SEG_DATASET_NAME
from keras_pvt.images import parse_image_size
from keras_pvt.limits import integer, number
from keras_pvt.segmentation.losses import IGNORE_LABEL
from keras_pvt.segmentation.model import HEADS, LOGITS_STRIDES

SEGMENTATION_OUTPUT = "runs/semantic_fpn"


@dataclasses.dataclass(frozen=True)
class SegmentationDataOptions:
    """The images and masks of a run and how they are fed (see
    `keras_pvt.data.make_segmentation_pipelines`).

    Attributes:
        dataset: tfds name with masks (e.g. "scene_parse150"), a folder with ``images/*.jpg`` and
            ``masks/*.png`` (same stems), the embedded offline "keras_pvt_seg_shapes[/128px]", or
            ready `SegmentationPipelines` (their image and batch size, ignore label and
            reduce-zero-label then replace these fields).
        image_size: training crop (and validation) resolution: a side or (height, width).
        batch_size: global batch size (split over replicas).
        data_dir, download: the tensorflow-datasets folder; False: never download.
        augment, shuffle, cache: random resize by `scale_range`, crop, flip, photometric noise;
            see `make_segmentation_pipelines`.
        reduce_zero_label: ADE20K's rule (label 0 "other" -> ignored, others minus 1); None:
            the dataset's default.
        ignore_label: the mask value left out of the loss and the metrics (padding too).
        val_from_train: select the best epoch on 10% of ``train``, keeping ``test`` unseen.
    """

    dataset: str | SegmentationPipelines = SEG_DATASET_NAME
    image_size: int | tuple[int, int] = 256
    batch_size: int = 8
    data_dir: str | None = None
    download: bool = True
    augment: bool = True
    shuffle: bool = True
    val_from_train: bool = False
    scale_range: tuple[float, float] = (0.5, 2.0)
    reduce_zero_label: bool | None = None
    ignore_label: int = IGNORE_LABEL
    cache: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.dataset, SegmentationPipelines):  # ready pipelines decide these
            for name in ("image_size", "batch_size", "ignore_label", "reduce_zero_label"):
                object.__setattr__(self, name, getattr(self.dataset, name))
        integer("batch_size", self.batch_size)
        if not isinstance(self.image_size, int):
            object.__setattr__(self, "image_size", parse_image_size(self.image_size))
        integer("image_size (smaller side)", min(self.sides))
        integer("ignore_label", self.ignore_label, -(2**31), 2**31 - 1)
        if self.reduce_zero_label not in (None, True, False):
            raise ValueError(
                f"reduce_zero_label must be None, True or False, got {self.reduce_zero_label!r}."
            )
        try:
            low, high = self.scale_range
        except (TypeError, ValueError):
            raise ValueError(f"scale_range must be a pair (min, max), got {self.scale_range!r}.") from None
        number("scale_range min", low, 0.0, above=True)
        number("scale_range max", high, low)
        object.__setattr__(self, "scale_range", (float(low), float(high)))

    @property
    def sides(self) -> tuple[int, int]:
        """(height, width) of the training crops."""
        size = self.image_size
        return (size, size) if isinstance(size, int) else size


@dataclasses.dataclass(frozen=True)
class SegmenterOptions:
    """The segmenter `keras_pvt.SemanticFPN` builds on the backbone (defaults: the paper's).

    Attributes:
        head: "fpn" (mmseg's FPN neck + FPNHead).
        fpn_channels, head_channels: the neck's and the head's widths (256, 128).
        dropout: channel dropout before the classifier (0.1).
        logits_stride: 1: the model outputs logits at the input size (the loss then compares them
            with the masks directly, the same arithmetic as mmseg's resize-then-loss); 4: it
            outputs the stride-4 logits and the loss and metrics resize them. The saved
            ``best.keras`` outputs what was trained.
    """

    head: str = "fpn"
    fpn_channels: int = 256
    head_channels: int = 128
    dropout: float = 0.1
    logits_stride: int = 1

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}.")
        if self.logits_stride not in LOGITS_STRIDES:
            raise ValueError(f"logits_stride must be one of {LOGITS_STRIDES}, got {self.logits_stride!r}.")
        integer("fpn_channels", self.fpn_channels)
        integer("head_channels", self.head_channels)
        number("dropout", self.dropout, 0.0, 1.0, below=True)
