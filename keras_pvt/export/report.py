"""Console and JSON forms of a verification report."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from keras_pvt._safe_write import EXPORT_REPORT, atomic_write

TOP_OPS_SHOWN = 12


def report_path(output: str | os.PathLike) -> Path:
    """Where the JSON report of `output` goes: ``m.tflite`` -> ``m.report.json`` (same folder)."""
    path = Path(os.fspath(output).rstrip("/\\"))
    stem = path.stem if path.suffix else path.name
    return path.with_name(f"{stem}.report.json")


def write_report_json(report: Any, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write `report` (anything with `to_dict()`, or a dict) as indented JSON; returns the path.

    Written beside and renamed into place; `overwrite` replaces a previous report only (see
    `keras_pvt._safe_write.check_output`).
    """
    data = report.to_dict() if hasattr(report, "to_dict") else dict(report)
    text = json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text), EXPORT_REPORT, overwrite=overwrite)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _size(num_bytes: int) -> str:
    return f"{num_bytes / 2**20:.2f} MiB" if num_bytes >= 2**20 else f"{num_bytes / 1024:.1f} KiB"


def _dense_lines(dense: Any, minimum: float | None) -> list[str]:
    """A segmenter's per-pixel agreement with Keras, and both mIoUs against ground truth if known."""
    lines = [
        f"  pixel agreement   {100 * dense.pixel_agreement:.2f}% of {dense.pixels:,} pixels"
        + (f" (required {100 * minimum:.1f}%)" if minimum is not None else ""),
        f"  mIoU vs Keras     {100 * dense.mean_iou_vs_keras:.2f}% ({dense.num_classes} classes)",
    ]
    if dense.keras_mean_iou is not None:
        lines.append(
            f"  mIoU vs truth     Keras {100 * dense.keras_mean_iou:.2f}%, "
            f"export {100 * dense.export_mean_iou:.2f}% (pixel accuracy "
            f"{100 * dense.keras_pixel_accuracy:.2f}% / {100 * dense.export_pixel_accuracy:.2f}%)"
        )
    return lines


def _detection_lines(detections: Any, minimum: float | None) -> list[str]:
    """A detector's detection agreement with Keras (`keras_pvt.export.detections`)."""
    if detections.agreement is None:
        return [f"  detections        none on either side in {detections.images} images"]
    lines = [
        f"  detection agreement {100 * detections.agreement:.2f}%: {detections.matched} matched of "
        f"{detections.keras_detections} Keras / {detections.export_detections} exported detections"
        + (f" (required {100 * minimum:.1f}%)" if minimum is not None else ""),
        f"  near ties         {detections.near_ties} (score within {detections.score_tolerance:.2g} "
        "of a keep-or-drop threshold)",
    ]
    if detections.mean_iou is not None:
        lines.append(
            f"  matched pairs     mean IoU {detections.mean_iou:.6f}, "
            f"max score change {detections.max_score_diff:.3g}"
        )
    if detections.ap_vs_keras is not None:
        lines.append(f"  AP vs Keras       {100 * detections.ap_vs_keras:.2f} (Keras detections as truth)")
    return lines


def _agreement_images(report: Any) -> str:
    """The images an agreement was judged on, when not all of them."""
    source = getattr(report, "agreement_source", None)
    if not source:
        return ""
    units = "pixels of the " if getattr(report, "dense", None) is not None else ""
    return f" of the {units}{report.image_sources[source]} {source.replace('_', '-')} images"


def _sources(report: Any) -> str:
    """Where the verification images came from, when more than one source was used."""
    sources = getattr(report, "image_sources", None) or {}
    named = [f"{count} {name.replace('_', ' ')}" for name, count in sources.items() if count]
    if len(named) > 1:
        return f" ({', '.join(named)}; relative error: the larger of theirs)"
    return f" ({named[0]})" if named else ""


def format_report(report: Any) -> str:
    """Human-readable multi-line summary of a `VerificationReport`."""
    shape = "x".join("?" if d is None else str(d) for d in report.input_shape)
    lines = [
        f"{report.format} {report.path}" + (f" [{report.quantize}]" if report.quantize else ""),
        f"  status            {report.status}",
        f"  size              {_size(report.size_bytes)} ({report.size_bytes:,} bytes)",
        f"  input             {shape} {report.input_dtype}",
        f"  outputs           {', '.join(report.output_names)}",
        f"  samples           {report.sample_shape[0]} images of "
        f"{report.sample_shape[1]}x{report.sample_shape[2]}" + _sources(report),
    ]
    bound = report.max_relative_error
    for name, value in report.relative_error.items():
        lines.append(
            f"  rel. error {name:<7} {value:.3g}" + (f" (bound {bound:.3g})" if bound is not None else "")
        )
    for name, value in report.max_abs_diff.items():
        lines.append(f"  max|diff| {name:<8} {value:.3g} (mean {report.mean_abs_diff[name]:.3g})")
    if report.top1_agreement is not None:
        minimum = report.min_top1
        lines.append(
            f"  top-1 agreement   {100 * report.top1_agreement:.1f}%"
            + _agreement_images(report)
            + (f" (required {100 * minimum:.1f}%)" if minimum is not None else "")
        )
    if getattr(report, "dense", None) is not None:
        lines.extend(_dense_lines(report.dense, report.min_pixel_agreement))
    if getattr(report, "detections", None) is not None:
        lines.extend(_detection_lines(report.detections, report.min_detection_agreement))
    if report.near_tie_fraction is not None:
        units = "pixels" if report.dense is not None else "images"
        judged = _agreement_images(report) or f" of the {units}"
        lines.append(f"  near ties         {100 * report.near_tie_fraction:.1f}%{judged}")
    if report.inconclusive:
        lines.append(f"  INCONCLUSIVE: {report.inconclusive}")
    threads = f", {report.threads} threads" if report.threads else ""
    latency_shape = "x".join(map(str, report.latency_input_shape))
    lines.append(
        f"  latency           {report.latency_ms_median:.2f} ms median of {report.latency_runs} "
        f"runs ({latency_shape}{threads})"
    )
    if report.op_histogram:
        total = sum(report.op_histogram.values())
        shown = list(report.op_histogram.items())[:TOP_OPS_SHOWN]
        rest = total - sum(count for _, count in shown)
        ops = ", ".join(f"{name} {count}" for name, count in shown)
        lines.append(f"  ops ({total})         {ops}" + (f", other {rest}" if rest else ""))
        if report.quantize in ("int8", "int8-full"):
            floats = ", ".join(f"{k} {v}" for k, v in report.float_ops.items()) or "none"
            lines.append(f"  float ops         {floats}")
        if report.delegate_partitions is not None:
            lines.append(
                f"  XNNPACK           {report.delegate_partitions} delegated partition(s)"
                + (" covering the whole graph" if report.delegated_whole_graph else "")
            )
    for failure in report.failures:
        lines.append(f"  FAILURE: {failure}")
    return "\n".join(lines)
