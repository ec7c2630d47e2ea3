"""What the reports judge by: the named checks and their bounds (`TARGETS`), how far a row's outputs may
be from its reference (`TOLERANCES`), and the cell formatting the report sections share."""

from __future__ import annotations

import json
from typing import Any

from machine import environment_name

# Every check the reports make, by what it measures, and its bound: one place to change them.
TARGETS: dict[str, float] = {
    # "inference": images/s of `compile_inference` (and with freeze_weights=True) over the faster of
    # timm and kecam (the peers that group runs), at least.
    "inference speed-up over the fastest peer": 1.5,
    # "train": images/s of a training step over timm's, at least.
    "training speed-up over timm": 1.2,
    # "memory": peak RSS of ours at b0 batch 16 over the lowest of the peers', at most.
    "peak memory over the lowest peer's": 1.0,
    # "deploy": images/s of the best of our deployments over the fastest peer row that agrees with
    # its reference (every peer that ran), at least.
    "deployment speed-up over the fastest peer": 1.0,
    # "deploy": the same over the fastest peer on a framework runtime (timm eager, timm -> ONNX
    # Runtime, kecam and zeromodels on TensorFlow), at least.
    "deployment speed-up over the fastest framework runtime": 1.5,
    # "deploy": the best of ours at batch 16 as a share of the float32 roofline, at least.
    "share of the float32 roofline": 0.85,
    # "tflite": our float32 .tflite's latency over the fastest peer file's, as a speed-up, at least.
    "float32 .tflite speed-up over the fastest peer file": 1.2,
    # "tflite": our mixed int8 file's latency over our float32 file's, at most.
    "mixed int8 latency over float32": 0.6,
    # "tflite": our mixed int8 file's latency over kecam's int8 file's, at most.
    "mixed int8 latency over kecam's int8": 0.25,
    # "tflite": our mixed int8 file's size over our float32 file's, at most.
    "mixed int8 file size over float32": 0.35,
}

# The largest centred relative error of a row's outputs from its reference (`output_check`: the
# norm of the difference over the norm of the reference less its per-image mean) for the row to
# count as agreeing; rows beyond it are flagged and never ranked. float32 is `keras-pvt export`'s
# float32 bound; bf16 and int8 are looser than the export's (0.1 and 0.25) because the peers' files
# (kecam's every-op-integer int8, timm's bf16 through OpenVINO) are judged here too.
TOLERANCES: dict[str, float] = {"float32": 1e-4, "bf16": 0.15, "int8": 0.4}


def cell(run: dict[str, Any], group: str, params: dict[str, Any]) -> dict[str, Any]:
    """The summaries of every contestant of `group` at `params` (label -> summary)."""
    cells = run["results"].get(group, {}).get("cells", {})
    return cells.get(json.dumps(params, sort_keys=True), {})


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("MET" if ok else "NOT MET")


def check(
    name: str, ratio: float | None, at_least: bool, where: str, detail: str = "", broken: bool = False
) -> list[str]:
    """One row of the checks table: `where` (the cell) and `name` with its bound from `TARGETS`,
    the measured ratio and MET / NOT MET / n/a; `broken` (our own row's outputs disagree with its
    reference) makes it NOT MET whatever the ratio."""
    bound = TARGETS[name]
    sign = ">=" if at_least else "<="
    measured = "n/a" if ratio is None else f"{ratio:.2f}x"
    ok = None if ratio is None else (ratio >= bound if at_least else ratio <= bound)
    if broken:
        ok = False
    return [f"{where}: {name} {sign} {bound:g}x", measured + (f" ({detail})" if detail else ""), verdict(ok)]


def _error(comparison: dict[str, Any]) -> float | None:
    """The centred relative error of a `compare_outputs` result (older results: the plain one)."""
    return comparison.get("centred_relative_error", comparison.get("relative_error"))


def errors_of(summary: dict[str, Any] | None) -> dict[str, float]:
    """The relative errors a row's facts hold: vs its reference ("reference") and, for ours, the
    Keras model vs timm on the same weights ("timm")."""
    facts = (summary or {}).get("facts", {})
    found = {"reference": _error(facts), "timm": _error(facts.get("vs_timm", {}))}
    return {name: error for name, error in found.items() if error is not None}


def disagreement(summary: dict[str, Any] | None, precision: str = "float32") -> float | None:
    """The largest relative error of a row beyond its tolerance (the Keras-vs-timm comparison is
    always held to float32's), or None where the row agrees or holds no comparison."""
    worst = None
    for against, error in errors_of(summary).items():
        tolerance = TOLERANCES["float32" if against == "timm" else precision]
        if error > tolerance and (worst is None or error > worst):
            worst = error
    return worst


def agrees(summary: dict[str, Any] | None, precision: str = "float32") -> bool:
    """Whether a row that ran is within its tolerance (rows that are their own reference agree)."""
    return bool(summary) and "median_s" in summary and disagreement(summary, precision) is None


def flag(summary: dict[str, Any] | None, precision: str = "float32") -> str:
    """ " (outputs disagree: 3e-02)" for a row beyond its tolerance, else ""."""
    worst = disagreement(summary, precision)
    return "" if worst is None else f" (outputs disagree: {worst:.0e})"


def rate(summary: dict[str, Any] | None, skipped: str | None = None) -> str:
    """images/s, median (min-max); else why there is none."""
    if summary and "per_s" in summary:
        return f"{summary['per_s']:.1f} ({summary['per_s_min']:.1f}-{summary['per_s_max']:.1f})"
    return missing(summary, skipped)


def ms(summary: dict[str, Any] | None, skipped: str | None = None) -> str:
    """Milliseconds per call, median (min-max); else why there is none."""
    if summary and "median_s" in summary:
        return f"{1e3 * summary['median_s']:.2f} ({1e3 * summary['min_s']:.2f}-{1e3 * summary['max_s']:.2f})"
    return missing(summary, skipped)


def missing(summary: dict[str, Any] | None, skipped: str | None) -> str:
    """Why a cell has no timing: "n/a (reason)" where the contestant cannot run it, else "error"."""
    error = (summary or {}).get("error")
    if error:
        return f"n/a ({error.removeprefix('skipped: ')[:80]})" if error.startswith("skipped") else "error"
    return f"n/a ({skipped[:80]})" if skipped else "n/a"


def bold(text: str) -> str:
    return f"**{text}**"


def fastest(row: dict[str, Any], labels: tuple[str, ...], precision: str = "float32") -> str | None:
    """The label of the fastest of `labels` in `row` among those that agree with their reference."""
    ranked = [label for label in labels if agrees(row.get(label), precision)]
    return min(ranked, key=lambda label: row[label]["median_s"]) if ranked else None


def environments(run: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Library versions per virtual environment, from every worker that ran (and timm_weights.py)."""
    found: dict[str, dict[str, str]] = {}

    def add(info: dict[str, Any]) -> None:
        if info.get("versions") and info.get("python"):
            versions = {k: v for k, v in info["versions"].items() if k != "keras_pvt_source"}
            found.setdefault(environment_name(info["python"]), {}).update(versions)

    for group in run["results"].values():
        if not isinstance(group, dict):
            continue
        for info in group.get("workers", {}).values():
            add(info)
        add(group.get("timm_weights", {}))  # the environment that made timm's shared weights
    for workers in run["results"].get("memory_b0", {}).values():
        for info in workers.values():
            add(info)
    return found
