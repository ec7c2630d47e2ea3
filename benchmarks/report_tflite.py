"""The "tflite" group's part of `bench.md`: the float32 .tflite files of ours and every peer side by side
at batch 1, our int8 files beside kecam's, and their checks (bounds in `report_common.TARGETS`).

Each project's file is made the way its users make it: ours by `keras_pvt.export.convert_to_tflite`,
kecam's by `TFLiteConverter` on the tf-keras model, zeromodels' by `model.export(format="litert")`,
timm's by `litert_torch.convert(model, (sample,)).export(path)`. Every file outputs logits and is
compared with its own framework's model (ours: our Keras model, itself compared with timm on the
same weights; litert-torch's: timm). Rows beyond `report_common.TOLERANCES` are flagged and never
ranked; the fastest agreeing file of each row is bold.
"""

from __future__ import annotations

from typing import Any

from report_common import TOLERANCES, agrees, bold, cell, check, errors_of, fastest, flag, ms

VARIANTS = ("b0", "b2")
THREADS = (1, 2)
SIDE_BY_SIDE = (
    ("keras_pvt_float32", "ours", "our Keras model"),
    ("kecam_float32", "kecam", "kecam (tf-keras)"),
    ("zeromodels_float32", "zeromodels", "zeromodels (Keras 3)"),
    ("timm_litert_torch_float32", "timm -> litert-torch", "timm"),
)
PEER_FILES = tuple(label for label, _, _ in SIDE_BY_SIDE[1:])
INT8_MODES = (("int8", "int8 (ours: mixed)"), ("int8_full", "int8-full"))


def _row(run: dict[str, Any], variant: str, threads: int) -> dict[str, Any]:
    return cell(run, f"tflite_{variant}", {"threads": threads})


def _skipped(run: dict[str, Any], variant: str, label: str) -> str | None:
    info = run["results"].get(f"tflite_{variant}", {}).get("workers", {}).get(label, {})
    return info.get("skipped") or info.get("error")


def _ratio(ours: dict[str, Any] | None, other: dict[str, Any] | None) -> float | None:
    """Median time of `ours` over `other`'s (None unless both ran)."""
    if ours and other and "median_s" in ours and "median_s" in other:
        return ours["median_s"] / other["median_s"]
    return None


def _mib(summary: dict[str, Any] | None) -> str:
    size = (summary or {}).get("facts", {}).get("file_bytes")
    return "n/a" if size is None else f"{size / 2**20:.2f}"


def _accuracy(summary: dict[str, Any] | None) -> str:
    """The centred relative error of a file's outputs from its reference, and top-1 agreement."""
    error = errors_of(summary).get("reference")
    if error is None:
        return "n/a"
    return f"{error:.1e}, {summary['facts']['top1_agreement']:.0%}"


def tflite_section(run: dict[str, Any], checks: list[list[str]]) -> list[str]:
    """The side-by-side float32 table, the file details, the int8 table; appends their checks."""
    if not any(f"tflite_{v}" in run["results"] for v in VARIANTS):
        return []
    return [*_side_by_side(run, checks), *_files(run), *_int8(run, checks)]


def _side_by_side(run: dict[str, Any], checks: list[list[str]]) -> list[str]:
    lines = [
        "## float32 .tflite side by side: batch 1, 224x224, LiteRT, latency ms (median, min-max)",
        "",
        "Ours: `keras_pvt.export.convert_to_tflite`; kecam: `TFLiteConverter` on its tf-keras model; "
        'zeromodels: `model.export(format="litert")`; timm -> litert-torch: `litert_torch.convert(model, '
        "(torch.randn(1, 3, 224, 224),)).export(path)` (NCHW input). Bold: the fastest file of the row "
        f"among those whose outputs agree with their reference (centred relative error <= "
        f"{TOLERANCES['float32']:g});"
        " rows beyond it are flagged and not ranked. Last column: the fastest agreeing peer file's "
        "median time over ours (above 1: ours is faster).",
        "",
        "| model | threads | " + " | ".join(title for _, title, _ in SIDE_BY_SIDE) + " | speed-up of ours "
        "over the fastest peer file |",
        "|" + "---|" * (len(SIDE_BY_SIDE) + 3),
    ]
    for variant in VARIANTS:
        for threads in THREADS:
            row = _row(run, variant, threads)
            if not row:
                continue
            best = fastest(row, tuple(label for label, _, _ in SIDE_BY_SIDE))
            cells = []
            for label, _, _ in SIDE_BY_SIDE:
                text = ms(row.get(label), _skipped(run, variant, label)) + flag(row.get(label))
                cells.append(bold(text) if label == best else text)
            ours, peer = row.get("keras_pvt_float32"), fastest(row, PEER_FILES)
            speedup = None
            if agrees(ours) and peer:
                speedup = row[peer]["median_s"] / ours["median_s"]
            versus = "n/a" if speedup is None else f"{speedup:.2f}x (vs {peer})"
            broken = bool(ours) and "median_s" in ours and not agrees(ours)
            if broken:
                versus = "n/a (ours disagrees)"
            lines.append(f"| {variant} | {threads} | " + " | ".join(cells) + f" | {versus} |")
            detail = "our outputs disagree with their reference" if broken else (f"vs {peer}" if peer else "")
            checks.append(
                check(
                    "float32 .tflite speed-up over the fastest peer file",
                    speedup,
                    True,
                    f"{variant} batch 1, {threads} thread(s)",
                    detail if speedup is not None or broken else "",
                    broken,
                )
            )
    return [*lines, ""]


def _files(run: dict[str, Any]) -> list[str]:
    """Each float32 file's size and how far its outputs are from its reference."""
    lines = [
        "Files (float32): size, and the outputs' centred relative error from the file's reference "
        "(ours: our Keras model, whose own error from timm on the same weights follows).",
        "",
        "| model | file | MiB | reference | outputs vs reference |",
        "|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        row = _row(run, variant, 1)
        for label, title, reference in SIDE_BY_SIDE if row else ():
            errors = errors_of(row.get(label))
            text = f"{errors['reference']:.1e}" if "reference" in errors else "n/a"
            if "timm" in errors:
                text += f"; our Keras model vs timm: {errors['timm']:.1e}"
            lines.append(f"| {variant} | {title} | {_mib(row.get(label))} | {reference} | {text} |")
    return [*lines, ""]


def _int8(run: dict[str, Any], checks: list[list[str]]) -> list[str]:
    if not any(f"keras_pvt_{quant}" in _row(run, "b0", t) for quant, _ in INT8_MODES for t in THREADS):
        return []
    lines = [
        "## int8 .tflite, b0, batch 1, latency ms (median, min-max)",
        "",
        'Ours: `convert_to_tflite` ("int8": mixed int8, "int8-full": every op integer); kecam: the plain '
        "converter (its int8: every op integer). Outputs vs the file's own Keras model: centred "
        "relative error of the logits, top-1 agreement (random weights and images: top-1 cannot judge "
        f"their near-uniform logits; flagged beyond {TOLERANCES['int8']:g}, the bound `keras-pvt export` "
        "verifies int8 files with).",
        "",
        "| model | threads | keras_pvt | kecam | keras_pvt / kecam | MiB (ours / kecam) | ours vs Keras | "
        "kecam vs Keras |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for quant, title in INT8_MODES:
        for threads in THREADS:
            row = _row(run, "b0", threads)
            ours, peer = row.get(f"keras_pvt_{quant}"), row.get(f"kecam_{quant}")
            ratio = _ratio(ours, peer) if agrees(ours, "int8") and agrees(peer, "int8") else None
            lines.append(
                f"| {title} | {threads} | {ms(ours)}{flag(ours, 'int8')} | {ms(peer)}{flag(peer, 'int8')} | "
                f"{'n/a' if ratio is None else f'{ratio:.2f}x'} | {_mib(ours)} / {_mib(peer)} | "
                f"{_accuracy(ours)} | {_accuracy(peer)} |"
            )
    _int8_checks(run, checks)
    return [*lines, ""]


def _int8_checks(run: dict[str, Any], checks: list[list[str]]) -> None:
    """Our mixed int8 file against our float32 file and kecam's int8, and its size; a check whose
    rows disagree with their reference is n/a (ours: NOT MET)."""
    for threads in THREADS:
        row = _row(run, "b0", threads)
        mixed = row.get("keras_pvt_int8")
        for other, name, precision in (
            ("keras_pvt_float32", "mixed int8 latency over float32", "float32"),
            ("kecam_int8", "mixed int8 latency over kecam's int8", "int8"),
        ):
            ratio, detail = _ratio(mixed, row.get(other)), ""
            if ratio is not None and not agrees(row.get(other), precision):
                ratio, detail = None, f"{other} outputs disagree with its reference"
            broken = ratio is not None and not agrees(mixed, "int8")
            if broken:
                detail = "our int8 outputs disagree with our Keras model"
            checks.append(check(name, ratio, False, f"b0 batch 1, {threads} thread(s)", detail, broken))
    row = _row(run, "b0", 1)
    labels = ("keras_pvt_int8", "keras_pvt_float32")
    sizes = [row.get(label, {}).get("facts", {}).get("file_bytes") for label in labels]
    ratio = sizes[0] / sizes[1] if None not in sizes else None
    checks.append(check("mixed int8 file size over float32", ratio, False, "b0"))
