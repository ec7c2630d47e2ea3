"""Run an exported model next to the Keras model and measure how far apart they are.

The TFLite file runs in the LiteRT interpreter (`ai_edge_litert.interpreter`, the `export` extra);
the SavedModel through plain `tf.saved_model.load`. Non-finite outputs are always a failure: they are
the signature of a broken conversion (e.g. uninitialised variables left as VAR_HANDLE ops).
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import os
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from keras_pvt._litert_private import ops_details
from keras_pvt.export._files import size_on_disk
from keras_pvt.export.bounds import (
    Bounds,
    agreement_undecided,
    near_tie_fraction,
    relative_error,
    resolve_bounds,
    tie_error,
)
from keras_pvt.export.dense import (
    DEFAULT_IGNORE_LABEL,
    DenseAgreement,
    dense_agreement,
    dense_failures,
    is_dense_model,
)
from keras_pvt.export.detections import (
    DetectionAgreement,
    as_xyxy,
    detection_agreement,
    detection_failures,
    drop_swapped_pairs,
    is_detection_outputs,
    undecided_reason,
)
from keras_pvt.export.signature import SIGNATURE_KEY, serving_function

DEFAULT_RUNS = 10
WARMUP_RUNS = 2
HELD_OUT = "held_out"  # the image source an agreement is judged on when it has images


@dataclasses.dataclass
class VerificationReport:
    """What verification measured and the bounds it was held to.

    `status` is "FAILED" when any entry of `failures` was recorded (`ok` is then False),
    "INCONCLUSIVE" when the agreement could not judge the file (`inconclusive` says why) and the
    relative error passed, else "OK". `relative_error` and `near_tie_fraction` are defined in
    `keras_pvt.export.bounds`; the near ties count images, or pixels for a segmenter. With
    A detector's outputs are compared as detections (`detections`, `keras_pvt.export.detections`):
    its relative errors and differences are those of the matched boxes and scores. With
    `image_sources` (how many images, in order, came from each source: held-out, generated) an
    output's relative error is the largest of the sources', so neither hides the other, and the
    agreement is judged on the held-out images when there are any (`agreement_source`): images of
    the user's kind, which the model tells apart.
    """

    path: str
    format: str
    size_bytes: int
    input_shape: list[int | None]
    input_dtype: str
    sample_shape: list[int]
    output_names: list[str]
    max_abs_diff: dict[str, float]
    mean_abs_diff: dict[str, float]
    top1_agreement: float | None
    latency_ms_median: float
    latency_runs: int
    threads: int | None
    latency_input_shape: list[int]
    relative_error: dict[str, float] = dataclasses.field(default_factory=dict)
    image_sources: dict[str, int] | None = None
    agreement_source: str | None = None
    near_tie_fraction: float | None = None
    max_relative_error: float | None = None
    min_top1: float | None = None
    op_histogram: dict[str, int] = dataclasses.field(default_factory=dict)
    float_ops: dict[str, int] = dataclasses.field(default_factory=dict)
    delegate_partitions: int | None = None
    delegated_whole_graph: bool | None = None
    quantize: str | None = None
    dense: DenseAgreement | None = None
    min_pixel_agreement: float | None = None
    detections: DetectionAgreement | None = None
    min_detection_agreement: float | None = None
    inconclusive: str | None = None
    failures: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def status(self) -> str:
        if self.failures:
            return "FAILED"
        return "INCONCLUSIVE" if self.inconclusive else "OK"

    @property
    def max_abs_diff_overall(self) -> float:
        return max(self.max_abs_diff.values()) if self.max_abs_diff else float("nan")

    @property
    def relative_error_overall(self) -> float:
        return max(self.relative_error.values()) if self.relative_error else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            **dataclasses.asdict(self),
            "ok": self.ok,
            "max_abs_diff_overall": self.max_abs_diff_overall,
            "relative_error_overall": self.relative_error_overall,
        }


@dataclasses.dataclass
class Comparison:
    """The figures of one comparison of an export's outputs with the Keras model's."""

    max_abs_diff: dict[str, float]
    mean_abs_diff: dict[str, float]
    relative_error: dict[str, float]
    agreement_source: str | None
    top1_agreement: float | None
    near_tie_fraction: float | None
    dense: DenseAgreement | None
    failures: list[str]
    detections: DetectionAgreement | None = None

    def report_fields(self) -> dict[str, Any]:
        """The `VerificationReport` fields these figures fill."""
        nested = {"dense": self.dense, "detections": self.detections, "failures": list(self.failures)}
        return dataclasses.asdict(self) | nested


# ---------------------------------------------------------------------------------- comparison
def _keras_outputs(model: Any, images: np.ndarray) -> dict[str, np.ndarray]:
    """The Keras model's outputs (inference mode) as ``{name: array}``, as the exports name them."""
    outputs = serving_function(model)(images)
    return {name: np.asarray(value, dtype=np.float32) for name, value in outputs.items()}


def _source_slices(sources: Mapping[str, int] | None, count: int) -> list[slice]:
    """The images of each source as slices of the batch (one slice of all without sources)."""
    if not sources:
        return [slice(0, count)]
    if sum(sources.values()) != count:
        raise ValueError(f"`image_sources` {dict(sources)} do not add up to the {count} images.")
    ends = np.cumsum([0, *sources.values()])
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(ends) if b > a]


def _agreement_part(sources: Mapping[str, int] | None, count: int) -> tuple[str | None, slice]:
    """(source, slice) of the images an agreement is judged on: the held-out ones if any, else all."""
    if not sources or not sources.get(HELD_OUT):
        return None, slice(0, count)
    start = 0
    for name, size in sources.items():
        if name == HELD_OUT:
            return HELD_OUT, slice(start, start + size)
        start += size
    raise AssertionError("unreachable: HELD_OUT is among the sources")


def _compare(
    reference: Mapping[str, np.ndarray],
    exported: Mapping[str, np.ndarray],
    bound: float,
    sources: Mapping[str, int] | None = None,
) -> Comparison:
    """Per-output max / mean abs difference and relative error (the largest of the `sources`'),
    the top-1 agreement of class scores (outputs of shape (N, classes)) and their near ties
    (`bounds.tie_error` of the relative error and its `bound`), and failures."""
    failures: list[str] = []
    if len(reference) == 1 and len(exported) == 1:  # a lone output may be unnamed ("output_0")
        exported = {next(iter(reference)): next(iter(exported.values()))}
    missing = sorted(set(reference) - set(exported))
    if missing:
        failures.append(f"outputs {missing} are missing from the export (it has {sorted(exported)}).")
    max_diff, mean_diff, relative, agreements, ties = {}, {}, {}, [], []
    source, part = None, slice(None)
    for name in reference:
        if name not in exported:
            continue
        ref, out = reference[name], np.asarray(exported[name], np.float32)
        if ref.shape != out.shape:
            failures.append(f"output {name!r} has shape {out.shape}, the Keras model {ref.shape}.")
            continue
        if not np.all(np.isfinite(ref)):
            failures.append(f"the Keras model itself gives non-finite values in {name!r}.")
        if not np.all(np.isfinite(out)):
            failures.append(
                f"output {name!r} has non-finite values (NaN/Inf): the exported file is broken "
                "(e.g. variables left uninitialised as VAR_HANDLE ops)."
            )
        diff = np.abs(ref.astype(np.float64) - out.astype(np.float64))
        max_diff[name] = float(np.nan_to_num(diff, nan=np.inf).max())
        mean_diff[name] = float(np.nan_to_num(diff, nan=np.inf).mean())
        slices = _source_slices(sources, len(ref))
        relative[name] = max(relative_error(ref[group], out[group]) for group in slices)
        source, part = _agreement_part(sources, len(ref))
        if ref.ndim == 2 and ref.shape[1] > 1:
            agreements.append(float(np.mean(ref[part].argmax(-1) == out[part].argmax(-1))))
            ties.append(near_tie_fraction(ref[part], tie_error(relative[name], bound)))
    top1 = float(np.mean(agreements)) if agreements else None
    near_ties = float(max(ties)) if ties else None
    return Comparison(max_diff, mean_diff, relative, source, top1, near_ties, None, failures)


def _comparison(
    model: Any,
    reference: Mapping[str, np.ndarray],
    exported: Mapping[str, np.ndarray],
    dense: bool | None,
    masks: Any,
    ignore_label: int | None,
    bound: float,
    sources: Mapping[str, int] | None = None,
) -> Comparison:
    """`_compare`, plus the per-pixel comparison for a segmenter (`dense`; None = auto): its
    agreement is per pixel (no top-1), its near ties are pixels; a detector's outputs are compared
    as detections (`_detection_comparison`)."""
    if is_detection_outputs(reference):
        return _detection_comparison(model, reference, exported, bound)
    figures = _compare(reference, exported, bound, sources)
    if not (is_dense_model(model) if dense is None else dense):
        if masks is not None:
            raise ValueError("Ground-truth masks apply to segmenters only (per-pixel logits).")
        return figures
    count = len(next(iter(reference.values())))
    figures.agreement_source, part = _agreement_part(sources, count)
    reference = {name: value[part] for name, value in reference.items()}
    exported = {name: np.asarray(value)[part] for name, value in exported.items()}
    masks = None if masks is None else np.asarray(masks)[part]
    agreement, problems = dense_agreement(reference, exported, masks, ignore_label)
    figures.top1_agreement, figures.dense = None, agreement
    figures.failures.extend(problems)
    figures.near_tie_fraction = None
    if agreement is not None:
        (logits,), (error,) = reference.values(), figures.relative_error.values()
        figures.near_tie_fraction = near_tie_fraction(logits, tie_error(error, bound))
    return figures


def _detection_comparison(
    model: Any, reference: Mapping[str, np.ndarray], exported: Mapping[str, np.ndarray], bound: float
) -> Comparison:
    """A detector's comparison: the detection agreement, and the relative error and differences of
    the matched boxes and scores (padded rows cannot be compared in place: near-equal scores swap),
    less the `SWAPPED_PAIRS` worst pairs. `bound` caps the score change of a near tie."""
    from keras_pvt.detection.layers import RetinaNetDetections

    missing = sorted(set(reference) - set(exported))
    if missing:
        failures = [f"outputs {missing} are missing from the export (it has {sorted(exported)})."]
        return Comparison({}, {}, {}, None, None, None, None, failures)
    layers = [layer for layer in model.layers if isinstance(layer, RetinaNetDetections)]
    threshold = layers[0].score_threshold if layers else 0.0
    if layers:  # matched by IoU, which needs corners
        reference = as_xyxy(reference, layers[0].bounding_box_format)
        exported = as_xyxy(exported, layers[0].bounding_box_format)
    failures = [
        f"output {name!r} has non-finite values (NaN/Inf): the exported file is broken."
        for name in ("boxes", "confidence")
        if not np.all(np.isfinite(np.asarray(exported[name], np.float64)))
    ]
    agreement, pairs = detection_agreement(reference, exported, threshold, bound)
    keras_rows = np.concatenate([keras for keras, _ in pairs]) if pairs else np.zeros((0, 5))
    export_rows = np.concatenate([out for _, out in pairs]) if pairs else np.zeros((0, 5))
    keras_rows, export_rows = drop_swapped_pairs(keras_rows, export_rows)
    max_diff, mean_diff, relative = {}, {}, {}
    for name, columns in (("boxes", slice(0, 4)), ("confidence", slice(4, 5))):
        keras, out = keras_rows[:, columns], export_rows[:, columns]
        diff = np.abs(keras - out)
        max_diff[name] = float(diff.max()) if diff.size else 0.0
        mean_diff[name] = float(diff.mean()) if diff.size else 0.0
        relative[name] = relative_error(keras, out) if diff.size else 0.0
    return Comparison(max_diff, mean_diff, relative, None, None, None, None, failures, detections=agreement)


def median_ms(call: Callable[[], Any], runs: int, warmup: int = WARMUP_RUNS) -> float:
    """Median wall time of `call` in milliseconds over `runs` calls, after `warmup` untimed calls."""
    if runs < 1:
        raise ValueError(f"`runs` must be at least 1, got {runs}.")
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    return float(statistics.median(times))


def bound_fields(bounds: Bounds) -> dict[str, float]:
    """The `VerificationReport` fields that record `bounds`."""
    return {
        "max_relative_error": bounds.max_relative_error,
        "min_top1": bounds.min_top1,
        "min_pixel_agreement": bounds.min_pixel_agreement,
        "min_detection_agreement": bounds.min_detection_agreement,
    }


def judge(report: VerificationReport) -> None:
    """Hold the report's figures to its bounds: each breach is a failure; an agreement that near
    ties could pull below its minimum does not judge (`inconclusive`), the relative error decides."""
    bound = report.max_relative_error
    if bound is not None:
        for name, value in report.relative_error.items():
            if not value <= bound:
                report.failures.append(
                    f"output {name!r}: relative error {value:.3g} exceeds the bound {bound:.3g}."
                )
    if report.detections is not None:
        minimum = report.min_detection_agreement or 0.0
        report.inconclusive = undecided_reason(report.detections, minimum)
        if report.inconclusive is None:
            report.failures.extend(detection_failures(report.detections, minimum))
        return
    if report.dense is not None:
        what, agreement, minimum = "pixel", report.dense.pixel_agreement, report.min_pixel_agreement
    else:
        what, agreement, minimum = "top-1", report.top1_agreement, report.min_top1
    if agreement is None or minimum is None:
        return
    if agreement_undecided(report.near_tie_fraction, minimum):
        report.inconclusive = _undecided_reason(what, report.near_tie_fraction, minimum)
    elif report.dense is not None:
        report.failures.extend(dense_failures(report.dense, minimum))
    elif agreement < minimum:
        report.failures.append(f"top-1 agreement {agreement:.3f} is below the required {minimum:.3f}.")


def _undecided_reason(what: str, near_ties: float | None, minimum: float) -> str:
    units = "pixels" if what == "pixel" else "images"
    return (
        f"{what} agreement cannot judge this file: {100 * (near_ties or 0):.1f}% of the {units} "
        "are near ties (the Keras top-1 margin is small enough for the file's error to flip it), "
        f"more than the {100 * max(0.0, 1 - minimum):.1f}% the minimum of {100 * minimum:.1f}% "
        "allows; the relative error decides."
    )


# ---------------------------------------------------------------------------------- TFLite
def _interpreter(source: str | bytes, threads: int | None, delegates: bool = True) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as error:
        raise ImportError(
            "Verifying a TFLite file needs the LiteRT interpreter: pip install 'keras-pvt[export]' "
            "(package ai-edge-litert)."
        ) from error
    kwargs: dict[str, Any] = {"num_threads": threads}
    if not delegates:
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if isinstance(source, bytes):
        return Interpreter(model_content=source, **kwargs)
    if not os.path.isfile(source):
        raise FileNotFoundError(f"TFLite file {source!r} does not exist.")
    return Interpreter(model_path=os.fspath(source), **kwargs)


def op_histogram(tflite: str | bytes) -> dict[str, int]:
    """Count of each operator in the file's graph (before any delegate takes nodes), most first."""
    return analyze_ops(tflite)[0]


def analyze_ops(tflite: str | bytes) -> tuple[dict[str, int], dict[str, int]]:
    """(all ops, ops computing in float) of the file's graph, each as ``{name: count}``."""
    every, floats, _ = op_type_counts(tflite)
    return every, floats


def op_type_counts(tflite: str | bytes) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """(all ops, ops computing in float, ops computing in int8) of the file's graph, each as
    ``{name: count}``, most first, from one reading of the graph.

    An op computes in float (int8) when one of its results is float32/float16 (int8); QUANTIZE is
    in neither. In an int8 file the float ones are the ops left unquantised (plus the DEQUANTIZEs
    around them).
    """
    ops = ops_details(_interpreter(tflite, threads=1, delegates=False))
    return (
        _count_ops(ops, None),
        _count_ops(ops, (np.float32, np.float16)),
        _count_ops(ops, (np.int8,)),
    )


def _count_ops(ops: list[dict[str, Any]], result_dtypes: tuple[Any, ...] | None) -> dict[str, int]:
    """``{op name: count}`` of `ops` (those with a result of `result_dtypes`, QUANTIZE left out)."""
    counts = collections.Counter(
        op["op_name"]
        for op in ops
        if result_dtypes is None
        or (
            op["op_name"] != "QUANTIZE"
            and any(np.dtype(t) in result_dtypes for t in op.get("result_types", []))
        )
    )
    return dict(counts.most_common())


class TFLiteRunner:
    """Named-tensor access to a `.tflite` file's `serving_default` signature.

    Inputs are resized with `resize_tensor_input` when the file has dynamic dimensions, int8/uint8
    inputs and outputs are (de)quantised, and a fixed batch is fed in chunks.
    """

    def __init__(self, tflite: str | bytes, threads: int | None = None) -> None:
        self.interpreter = _interpreter(tflite, threads)
        signatures = self.interpreter.get_signature_list()
        if SIGNATURE_KEY in signatures:
            runner = self.interpreter.get_signature_runner(SIGNATURE_KEY)
            self.input = next(iter(runner.get_input_details().values()))
            self.outputs = dict(runner.get_output_details())
        else:
            self.input = self.interpreter.get_input_details()[0]
            self.outputs = {d["name"]: d for d in self.interpreter.get_output_details()}
        self.signature = [int(d) for d in self.input["shape_signature"]]
        self._shape: list[int] | None = None

    @property
    def input_shape(self) -> list[int | None]:
        return [d if d > 0 else None for d in self.signature]

    def _prepare(self, shape: tuple[int, ...]) -> None:
        for dim, want, axis in zip(self.signature, shape, ("batch", "height", "width", "channels")):
            if dim > 0 and dim != want:
                raise ValueError(
                    f"The TFLite input has fixed {axis} {dim} but the images have {want}; export "
                    "with dynamic shapes or pass images of the exported size."
                )
        if self._shape != list(shape):
            index = self.input["index"]
            if any(d <= 0 for d in self.signature):
                self.interpreter.resize_tensor_input(index, list(shape), strict=True)
            self.interpreter.allocate_tensors()
            self._shape = list(shape)

    def _feed(self, images: np.ndarray) -> None:
        detail = self.input
        if detail["dtype"] in (np.int8, np.uint8):
            scale, zero = detail["quantization"]
            info = np.iinfo(detail["dtype"])
            images = np.clip(np.round(images / scale) + zero, info.min, info.max)
        self.interpreter.set_tensor(detail["index"], images.astype(detail["dtype"]))

    def _fetch(self) -> dict[str, np.ndarray]:
        out = {}
        for name, detail in self.outputs.items():
            value = self.interpreter.get_tensor(detail["index"])
            if detail["dtype"] in (np.int8, np.uint8):
                scale, zero = detail["quantization"]
                value = (value.astype(np.float32) - zero) * scale
            out[name] = value.astype(np.float32)
        return out

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        images = np.asarray(images, np.float32)
        batch = self.signature[0] if self.signature[0] > 0 else len(images)
        if len(images) % batch:
            raise ValueError(f"{len(images)} images do not split into the fixed batch {batch}.")
        chunks = []
        for start in range(0, len(images), batch):
            self._prepare(images[start : start + batch].shape)
            self._feed(images[start : start + batch])
            self.interpreter.invoke()
            chunks.append(self._fetch())
        return {name: np.concatenate([c[name] for c in chunks]) for name in self.outputs}

    def latency_ms(self, image: np.ndarray, runs: int) -> float:
        """Median wall time of one `invoke` on `image` (batch 1 unless the file fixes more)."""
        batch = max(self.signature[0], 1)
        sample = np.repeat(np.asarray(image, np.float32)[None], batch, axis=0)
        self._prepare(sample.shape)
        self._feed(sample)
        return median_ms(self.interpreter.invoke, runs)

    def delegation(self) -> tuple[int, bool]:
        """(partitions handed to the default delegate (XNNPACK on CPU), whether one partition
        runs the whole graph: it reads the model input and writes every model output)."""
        nodes = [op for op in ops_details(self.interpreter) if op["op_name"] == "DELEGATE"]
        outputs = {int(d["index"]) for d in self.outputs.values()}
        whole = len(nodes) == 1 and (
            int(self.input["index"]) in set(nodes[0]["inputs"].tolist())
            and outputs <= set(nodes[0]["outputs"].tolist())
        )
        return len(nodes), whole


def verify_tflite(
    tflite_path: str | os.PathLike,
    model: Any,
    images: np.ndarray,
    *,
    threads: int | None = 2,
    runs: int = DEFAULT_RUNS,
    tolerance: float | None = None,
    min_top1: float | None = None,
    quantize: str | None = None,
    masks: Any = None,
    min_pixel_agreement: float | None = None,
    dense: bool | None = None,
    ignore_label: int | None = DEFAULT_IGNORE_LABEL,
    image_sources: Mapping[str, int] | None = None,
) -> VerificationReport:
    """Run `tflite_path` with LiteRT on `images` and compare it with `model`.

    Args:
        tflite_path: the converted file.
        model: the Keras model it came from.
        images: float32 model-ready images (N, H, W, C) (see `keras_pvt.export.load_images`).
        threads: interpreter threads for the run and the latency measurement.
        runs: timed invocations (batch 1) for the median latency, after warm-up runs.
        tolerance: the largest relative error of any output (`keras_pvt.export.bounds`).
        min_top1: a classifier's smallest top-1 agreement with the model.
        quantize: the mode the file was made in: its default bounds (`bounds.DEFAULT_BOUNDS`)
            fill the three bounds left None; None = unknown, the loosest (int8-full's).
        masks: for a segmenter, ground-truth class masks (N, H, W) of `images`: the report then
            gives the Keras model's and the file's mIoU against them (`ignore_label` not counted).
        min_pixel_agreement: a segmenter's smallest fraction of pixels whose argmax matches Keras.
        dense: compare per pixel (`report.dense`: pixel agreement, mIoU vs Keras) instead of top-1;
            None = when `model` is a keras-pvt segmenter (`keras_pvt.segmentation.is_segmenter`).
        image_sources: how many of `images`, in order, came from each source, e.g.
            ``{"held_out": 8, "generated": 8}``: the relative error is the largest of theirs.

    Returns the `VerificationReport`; it lists non-finite outputs, missing outputs and breached
    bounds in `failures` (check `report.status` / `report.ok`), it does not raise for them.
    """
    bounds = resolve_bounds("tflite", quantize or "int8-full", tolerance, min_top1, min_pixel_agreement)
    path = os.fspath(tflite_path)
    images = np.asarray(images, np.float32)
    runner = TFLiteRunner(path, threads)
    exported = runner(images)
    reference = _keras_outputs(model, images)
    figures = _comparison(
        model, reference, exported, dense, masks, ignore_label, bounds.max_relative_error, image_sources
    )
    latency = runner.latency_ms(images[0], runs)
    partitions, whole = runner.delegation()
    histogram, float_ops = analyze_ops(path)
    if "VAR_HANDLE" in histogram:
        figures.failures.append(
            f"the graph holds {histogram['VAR_HANDLE']} VAR_HANDLE ops: the weights were not frozen "
            "into the file (convert through a SavedModel, not from_concrete_functions)."
        )
    report = VerificationReport(
        path=path,
        format="tflite",
        size_bytes=size_on_disk(path),
        input_shape=runner.input_shape,
        input_dtype=np.dtype(runner.input["dtype"]).name,
        sample_shape=list(images.shape),
        output_names=list(exported),
        latency_ms_median=latency,
        latency_runs=runs,
        threads=threads,
        latency_input_shape=list(runner._shape or []),
        op_histogram=histogram,
        float_ops=float_ops,
        delegate_partitions=partitions,
        delegated_whole_graph=whole,
        quantize=quantize,
        image_sources=dict(image_sources) if image_sources else None,
        **figures.report_fields(),
        **bound_fields(bounds),
    )
    judge(report)
    return report


# ---------------------------------------------------------------------------------- SavedModel
def verify_saved_model(
    path: str | os.PathLike,
    model: Any,
    images: np.ndarray,
    *,
    runs: int = DEFAULT_RUNS,
    tolerance: float | None = None,
    min_top1: float | None = None,
    masks: Any = None,
    min_pixel_agreement: float | None = None,
    dense: bool | None = None,
    ignore_label: int | None = DEFAULT_IGNORE_LABEL,
) -> VerificationReport:
    """Load `path` with ``tf.saved_model.load`` and compare its `serving_default` with `model`.

    The bounds (None: the SavedModel's defaults, `bounds.DEFAULT_BOUNDS`) and the segmenter
    arguments (`masks`, `dense`, `ignore_label`) are those of `verify_tflite`.
    """
    bounds = resolve_bounds("saved_model", "float32", tolerance, min_top1, min_pixel_agreement)
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"SavedModel folder {path!r} does not exist.")
    serve = tf.saved_model.load(path).signatures[SIGNATURE_KEY]
    spec = next(iter(serve.structured_input_signature[1].values()))
    fixed_batch = spec.shape[0]
    images = np.asarray(images, np.float32)
    batch = fixed_batch or len(images)
    chunks = [serve(images=tf.constant(images[i : i + batch])) for i in range(0, len(images), batch)]
    exported = {k: np.concatenate([np.asarray(c[k]) for c in chunks]) for k in chunks[0]}
    reference = _keras_outputs(model, images)
    figures = _comparison(model, reference, exported, dense, masks, ignore_label, bounds.max_relative_error)
    single = tf.constant(np.repeat(images[:1], fixed_batch or 1, axis=0))
    report = VerificationReport(
        path=path,
        format="saved_model",
        size_bytes=size_on_disk(path),
        input_shape=list(spec.shape.as_list()),
        input_dtype=spec.dtype.name,
        sample_shape=list(images.shape),
        output_names=list(exported),
        latency_ms_median=median_ms(lambda: serve(images=single), runs),
        latency_runs=runs,
        threads=None,
        latency_input_shape=list(single.shape),
        **figures.report_fields(),
        **bound_fields(bounds),
    )
    judge(report)
    return report
