"""A Keras callback that scores the detector with COCO mAP after every epoch (pycocotools)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from keras_pvt.detection.coco_eval import METRIC_NAMES, evaluate_coco


class CocoEvaluation(keras.callbacks.Callback):
    """Adds ``val_ap``, ``val_ap50``, ``val_ap75``, ``val_ap_small``, ``val_ap_medium`` and
    ``val_ap_large`` (`prefix` + `coco_eval.METRIC_NAMES`) to each epoch's logs.

    `data`: ``(images, info)`` batches (`DetectionPipelines.val`); `ground_truth` as `evaluate_coco`.
    A RetinaNet trained on its raw outputs is scored through its detections (`detector_model`,
    same weights). List it before `CSVLogger` and `ModelCheckpoint(monitor="val_ap", mode="max")`:
    Keras calls callbacks in order, and those read the logs this one fills. `every` > 1 evaluates
    every `every`-th epoch and the last epoch of the fit, writing NaN in between so that every row
    of ``history.csv`` has the columns (a NaN never counts as the best epoch).
    """

    def __init__(
        self,
        data: Any,
        category_ids: Sequence[int],
        class_names: Sequence[str] | None = None,
        ground_truth: dict | None = None,
        prefix: str = "val_",
        every: int = 1,
    ) -> None:
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be a positive number of epochs, got {every}.")
        self.data = data
        self.category_ids = list(category_ids)
        self.class_names = None if class_names is None else list(class_names)
        self.ground_truth = ground_truth
        self.prefix = prefix
        self.every = int(every)
        self.history: list[dict[str, float]] = []
        self._detector: tuple[Any, Any] | None = None  # (model, its detector)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        last = (self.params or {}).get("epochs")
        if (epoch + 1) % self.every and epoch + 1 != last:
            logs.update({self.prefix + name: float("nan") for name in METRIC_NAMES})
            return
        metrics = evaluate_coco(
            self.detector(), self.data, self.category_ids, self.class_names, self.ground_truth
        )
        self.history.append(metrics)
        logs.update({self.prefix + name: value for name, value in metrics.items()})

    def detector(self) -> Any:
        """The model being trained, with RetinaNet's post-processing added when it returns raw outputs."""
        from keras_pvt.detection.model import DETECTIONS_NAME, detector_model, is_detector

        model = self.model
        if self._detector is None or self._detector[0] is not model:
            raw = is_detector(model) and DETECTIONS_NAME not in {layer.name for layer in model.layers}
            self._detector = (model, detector_model(model) if raw else model)
        return self._detector[1]
