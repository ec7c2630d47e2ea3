"""The "deploy" group's part of `bench.md`: every CPU deployment side by side, and issue 17's targets.

Targets (float32, 224x224, all from one run): in every cell (B0/B2, batch 1/16) the best of our
deployments >= 1.0x timm -> ONNX -> OpenVINO and >= 1.5x the fastest of timm, timm -> ONNX Runtime
and kecam (TensorFlow); at batch 16 >= 85% of the float32 roofline. The roofline is the measured
peak of `roofline.py` (the fastest large float32 matmul, NumPy or TensorFlow, at the group's thread
count); a model's FLOPs are `PVTV2Config.flops` (2 x multiply-accumulates of its convolutions, dense
layers and the two attention matmuls, counted from the layer shapes; norms, activations and softmax
left out). bfloat16 rows are reported beside, with their accuracy cost, and judged by nothing.
"""

from __future__ import annotations

import json
from typing import Any

VARIANTS = ("b0", "b2")
BATCHES = (1, 16)
ENGINE_LABELS = (
    ("keras_pvt_xla", 'ours: compile_inference engine="xla"'),
    ("keras_pvt_segments", 'ours: compile_inference engine="segments"'),
    ("keras_pvt_litert", 'ours: compile_inference engine="litert"'),
    ("keras_pvt_openvino", 'ours: compile_inference engine="openvino"'),
    ("keras_pvt_auto", 'ours: compile_inference engine="auto"'),
    ("keras_pvt_tflite", "ours: our float32 .tflite on LiteRT"),
    ("keras_pvt_openvino_ir", "ours: our IR on OpenVINO (f32)"),
)
PEER_LABELS = (
    ("timm", "timm (PyTorch eager)"),
    ("timm_onnxruntime", "timm -> ONNX -> ONNX Runtime"),
    ("timm_openvino", "timm -> ONNX -> OpenVINO (f32)"),
    ("kecam", "kecam (TensorFlow)"),
    ("kecam_tflite", "kecam float32 .tflite on LiteRT"),
)
BF16_LABELS = (
    ("timm_openvino_bf16", "timm -> ONNX -> OpenVINO (bf16 hint)"),
    ("keras_pvt_openvino_ir_bf16", "ours: our IR on OpenVINO (bf16 hint)"),
)
OURS = tuple(label for label, _ in ENGINE_LABELS)
FAST_PEERS = ("timm", "timm_onnxruntime", "kecam")  # issue 6's "1.5x the fastest peer", kept
ROOFLINE_SHARE = 0.85


def _row(run: dict[str, Any], variant: str, batch: int) -> dict[str, Any]:
    cells = run["results"].get(f"deploy_{variant}", {}).get("cells", {})
    return cells.get(json.dumps({"batch": batch, "size": 224}, sort_keys=True), {})


def _skipped(run: dict[str, Any], variant: str, label: str) -> str | None:
    info = run["results"].get(f"deploy_{variant}", {}).get("workers", {}).get(label, {})
    return info.get("skipped") or info.get("error")


def _rate(summary: dict[str, Any] | None, skipped: str | None) -> str:
    if summary and "per_s" in summary:
        return f"{summary['per_s']:.1f} ({summary['per_s_min']:.1f}-{summary['per_s_max']:.1f})"
    if summary and summary.get("error"):
        return "skipped" if summary["error"].startswith("skipped") else "error"
    return "skipped" if skipped else "n/a"


def _best(row: dict[str, Any], labels: tuple[str, ...]) -> tuple[str, float] | None:
    rates = [(label, row[label]["per_s"]) for label in labels if "per_s" in row.get(label, {})]
    return max(rates, key=lambda item: item[1]) if rates else None


def _largest_diff(run: dict[str, Any], label: str) -> str:
    diffs = [
        _row(run, v, b).get(label, {}).get("facts", {}).get("max_abs_diff") for v in VARIANTS for b in BATCHES
    ]
    diffs = [d for d in diffs if d is not None]
    return f"{max(diffs):.1e}" if diffs else "n/a"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("MET" if ok else "NOT MET")


def deploy_section(run: dict[str, Any], targets: list[list[str]]) -> list[str]:
    """The deployment table, bf16 beside it, the roofline; appends issue 17's float32 targets."""
    if not any(f"deploy_{v}" in run["results"] for v in VARIANTS):
        return []
    columns = [(v, b) for v in VARIANTS for b in BATCHES]
    lines = [
        "## Deployment on this CPU, float32, images/s at 224x224 (median, min-max)",
        "",
        "Every row in its own process, alternating run by run; ONNX Runtime, OpenVINO and LiteRT with "
        "2 intra-op threads. Max |diff|: the largest difference of the outputs from the row's own "
        "framework (timm for the ONNX rows, Keras for ours), over all cells.",
        "",
        "| deployment | " + " | ".join(f"{v} batch {b}" for v, b in columns) + " | max abs diff |",
        "|" + "---|" * (len(columns) + 2),
    ]
    for label, title in (*PEER_LABELS, *ENGINE_LABELS):
        cells = [_rate(_row(run, v, b).get(label), _skipped(run, v, label)) for v, b in columns]
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {_largest_diff(run, label)} |")
    lines += ["", *_bf16_lines(run, columns), *_roofline_lines(run)]
    _float32_targets(run, targets)
    return [*lines, ""]


def _bf16_lines(run: dict[str, Any], columns: list[tuple[str, int]]) -> list[str]:
    lines = [
        "bfloat16 beside it (OpenVINO's INFERENCE_PRECISION_HINT; the precision the compiled model "
        "reports in brackets; accuracy cost vs the float32 framework on the same random images: "
        "relative error of the logits, top-1 agreement):",
        "",
        "| deployment | " + " | ".join(f"{v} batch {b}" for v, b in columns) + " | accuracy cost |",
        "|" + "---|" * (len(columns) + 2),
    ]
    for label, title in BF16_LABELS:
        cells, costs = [], []
        for variant, batch in columns:
            summary = _row(run, variant, batch).get(label)
            facts = (summary or {}).get("facts", {})
            precision = f" [{facts['precision']}]" if "precision" in facts else ""
            cells.append(_rate(summary, _skipped(run, variant, label)) + precision)
            if "relative_error" in facts:
                costs.append(
                    f"{variant}/{batch}: {facts['relative_error']:.1e}, {facts['top1_agreement']:.0%}"
                )
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {'; '.join(costs) or 'n/a'} |")
    return [*lines, ""]


def _roofline_lines(run: dict[str, Any]) -> list[str]:
    roofline = run["results"].get("roofline")
    if not roofline:
        return []
    parts = []
    for index, measured in enumerate(roofline["runs"]):
        when = "before" if index == 0 else "after"
        if "peak_gflops" in measured:
            parts.append(
                f"{when}: NumPy {measured['numpy']['best_gflops']:.0f}, TensorFlow "
                f"{measured['tensorflow']['best_gflops']:.0f}"
            )
        else:
            parts.append(f"{when}: error")
    size = roofline["runs"][0].get("size", "?")
    return [
        f"float32 roofline: {roofline['peak_gflops']:.0f} GFLOP/s, the fastest {size}x{size} matmul at "
        f"2 threads (`roofline.py`; best GFLOP/s {'; '.join(parts)}). Model FLOPs: `PVTV2Config.flops` "
        "(2 x multiply-accumulates of convs, dense layers and attention matmuls, from the layer shapes).",
        "",
    ]


def _float32_targets(run: dict[str, Any], targets: list[list[str]]) -> None:
    from keras_pvt.presets import get_config

    peak = run["results"].get("roofline", {}).get("peak_gflops")
    for variant in VARIANTS:
        for batch in BATCHES:
            row = _row(run, variant, batch)
            if not row:
                continue
            ours = _best(row, OURS)
            for peers, factor, name in (
                (("timm_openvino",), 1.0, "timm -> ONNX -> OpenVINO"),
                (FAST_PEERS, 1.5, "the fastest of timm, timm -> ORT, kecam (TF)"),
            ):
                peer = _best(row, peers)
                ratio = ours[1] / peer[1] if ours and peer else None
                targets.append(
                    [
                        f"{variant} batch {batch}: best of ours >= {factor:.1f}x {name}",
                        "n/a" if ratio is None else f"{ratio:.2f}x ({ours[0]} vs {peer[0]})",
                        _verdict(None if ratio is None else ratio >= factor),
                    ]
                )
            if batch == 16:
                share = None
                if ours and peak:
                    share = get_config(variant).flops(224) * ours[1] / 1e9 / peak
                targets.append(
                    [
                        f"{variant} batch 16: best of ours >= {ROOFLINE_SHARE:.0%} of the float32 roofline",
                        "n/a"
                        if share is None
                        else f"{share:.0%} ({ours[0]}: {share * peak:.0f} of {peak:.0f} GFLOP/s)",
                        _verdict(None if share is None else share >= ROOFLINE_SHARE),
                    ]
                )
