"""The "deploy" group's part of `bench.md`: every CPU deployment side by side, and its checks.

Checks (bounds in `report_common.TARGETS`; float32, 224x224, all from one run): in every cell
(B0/B2, batch 1/16) the best of our deployments against the fastest peer row (every peer that ran
and agrees with its reference) and against the fastest peer on a framework runtime (timm eager,
timm -> ONNX Runtime, kecam and zeromodels on TensorFlow); at batch 16, its share of the float32
roofline. The roofline is the measured peak of `roofline.py` (the fastest large float32 matmul,
NumPy or TensorFlow, at the group's thread count); a model's FLOPs are `PVTV2Config.flops` (2 x
multiply-accumulates of its convolutions, dense layers and the two attention matmuls, counted from
the layer shapes; norms, activations and softmax left out). Rows whose outputs are further from
their reference than `report_common.TOLERANCES` allows are flagged and never ranked; the fastest
agreeing row of each cell is bold. bfloat16 rows are reported beside, with their accuracy cost,
and judged by nothing.
"""

from __future__ import annotations

from typing import Any

from report_common import TOLERANCES, bold, cell, check, errors_of, fastest, flag, rate

VARIANTS = ("b0", "b2")
BATCHES = (1, 16)
ENGINE_LABELS = (
    ("keras_pvt_default", "ours: compile_inference(model), the default engine"),
    ("keras_pvt_xla", 'ours: compile_inference engine="xla"'),
    ("keras_pvt_litert", 'ours: compile_inference engine="litert"'),
    ("keras_pvt_openvino", 'ours: compile_inference engine="openvino"'),
    ("keras_pvt_tflite", "ours: our float32 .tflite on LiteRT"),
    ("keras_pvt_openvino_ir", "ours: our IR on OpenVINO (f32)"),
)
# Label, title, and what the row's outputs are compared with ("" for a framework that is its own
# reference).
PEER_LABELS = (
    ("timm", "timm (PyTorch eager)", ""),
    ("timm_onnxruntime", "timm -> ONNX -> ONNX Runtime", "timm"),
    ("timm_openvino", "timm -> ONNX -> OpenVINO (f32)", "timm"),
    ("kecam", "kecam (TensorFlow)", ""),
    ("zeromodels", "zeromodels (TensorFlow)", ""),
    ("kecam_tflite", "kecam float32 .tflite on LiteRT", "kecam (TensorFlow)"),
    ("zeromodels_tflite", 'zeromodels float32 .tflite (`export(format="litert")`) on LiteRT', "zeromodels"),
    ("timm_litert_torch", "timm -> litert-torch float32 .tflite on LiteRT", "timm"),
)
BF16_LABELS = (
    ("timm_openvino_bf16", "timm -> ONNX -> OpenVINO (bf16 hint)"),
    ("keras_pvt_openvino_ir_bf16", "ours: our IR on OpenVINO (bf16 hint)"),
)
OURS = tuple(label for label, _ in ENGINE_LABELS)
PEERS = tuple(label for label, _, _ in PEER_LABELS)  # "the fastest peer": every one of them that ran
FRAMEWORK_PEERS = ("timm", "timm_onnxruntime", "kecam", "zeromodels")


def _row(run: dict[str, Any], variant: str, batch: int) -> dict[str, Any]:
    return cell(run, f"deploy_{variant}", {"batch": batch, "size": 224})


def _skipped(run: dict[str, Any], variant: str, label: str) -> str | None:
    info = run["results"].get(f"deploy_{variant}", {}).get("workers", {}).get(label, {})
    return info.get("skipped") or info.get("error")


def _comparison(run: dict[str, Any], label: str, against: str) -> str:
    """The largest relative error of a row's outputs from its reference over all cells, and for
    ours the Keras model's from timm's."""
    if not against:
        return "is the reference"
    worst: dict[str, float] = {}
    for variant in VARIANTS:
        for batch in BATCHES:
            for name, error in errors_of(_row(run, variant, batch).get(label)).items():
                worst[name] = max(error, worst.get(name, 0.0))
    if not worst:
        return "n/a"
    text = f"{worst['reference']:.1e} vs {against}" if "reference" in worst else ""
    if "timm" in worst:
        text += f"; Keras vs timm {worst['timm']:.1e}"
    return text


def deploy_section(run: dict[str, Any], checks: list[list[str]]) -> list[str]:
    """The deployment table, bf16 beside it, the roofline; appends the float32 checks."""
    if not any(f"deploy_{v}" in run["results"] for v in VARIANTS):
        return []
    columns = [(v, b) for v in VARIANTS for b in BATCHES]
    fastest_rows = {(v, b): fastest(_row(run, v, b), (*PEERS, *OURS)) for v, b in columns}
    lines = [
        "## Deployment on this CPU, float32, images/s at 224x224 (median, min-max)",
        "",
        "Every row in its own process, alternating run by run; ONNX Runtime, OpenVINO and LiteRT with "
        "2 intra-op threads. Bold: the fastest row of each cell among those whose outputs agree with "
        f"their reference (centred relative error <= {TOLERANCES['float32']:g}; rows beyond it are "
        "flagged and not ranked). Last column: the largest such error of the row's outputs from its "
        "reference over all cells (ours: from our Keras model, and our Keras model from timm on the "
        "same weights).",
        "",
        "| deployment | " + " | ".join(f"{v} batch {b}" for v, b in columns) + " | outputs vs reference |",
        "|" + "---|" * (len(columns) + 2),
    ]
    against = {label: reference for label, _, reference in PEER_LABELS}
    for label, title in (*((label, title) for label, title, _ in PEER_LABELS), *ENGINE_LABELS):
        cells = []
        for variant, batch in columns:
            summary = _row(run, variant, batch).get(label)
            text = rate(summary, _skipped(run, variant, label)) + flag(summary)
            cells.append(bold(text) if fastest_rows[variant, batch] == label else text)
        reference = against.get(label, "ours (Keras)")
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {_comparison(run, label, reference)} |")
    lines.append(
        "| best of ours / fastest peer | " + " | ".join(_versus(_row(run, v, b)) for v, b in columns) + " | |"
    )
    lines += ["", *_same_weights_lines(run), *_first_call_lines(run, columns)]
    lines += [*_bf16_lines(run, columns), *_roofline_lines(run)]
    _float32_checks(run, checks)
    return [*lines, ""]


def _versus(row: dict[str, Any]) -> str:
    """Images/s of the best of ours over the fastest peer's (both agreeing), naming both."""
    ours, peer = fastest(row, OURS), fastest(row, PEERS)
    if ours is None or peer is None:
        return "n/a"
    return f"{row[ours]['per_s'] / row[peer]['per_s']:.2f}x ({ours} vs {peer})"


def _same_weights_lines(run: dict[str, Any]) -> list[str]:
    """Which weights the rows ran, and how far our Keras model is from timm on them."""
    lines = []
    for variant in VARIANTS:
        group = run["results"].get(f"deploy_{variant}")
        if not group:
            continue
        made = group.get("timm_weights", {})
        if "weights" not in made:
            reason = made.get("error", "not made")[-200:].strip().replace("\n", " ")
            lines.append(
                f"- {variant}: every row ran its own random weights; ours was NOT compared with timm "
                f"(timm's weights could not be made: {reason})."
            )
            continue
        errors = [
            errors_of(summary).get("timm")
            for batch in BATCHES
            for label, summary in _row(run, variant, batch).items()
            if label in OURS
        ]
        errors = [e for e in errors if e is not None]
        comparison = (
            f"Our Keras model vs timm on the same images: centred relative error {max(errors):.1e} "
            f"({'agree' if max(errors) <= TOLERANCES['float32'] else 'DISAGREE'})"
            if errors
            else "Our Keras model was not compared with timm (no row of ours ran)"
        )
        lines.append(
            f"- {variant}: timm's random-init weights (`torch.manual_seed(0)`, `timm_weights.py`) in "
            f"every row built from timm and in ours; kecam and zeromodels ran their own random "
            f"weights (each compared with its own framework). {comparison}."
        )
    return ["Same weights:", "", *lines, ""] if lines else []


def _first_call_lines(run: dict[str, Any], columns: list[tuple[str, int]]) -> list[str]:
    """Seconds of each engine's first call per cell (the conversion for a new input shape included),
    and the default engine's speed over timm -> ONNX -> OpenVINO's."""
    lines = [
        "First call of our engines, seconds (a fresh process: building and converting for the shape "
        "included), and `compile_inference(model)` over timm -> ONNX -> OpenVINO:",
        "",
        "| engine | " + " | ".join(f"{v} batch {b}" for v, b in columns) + " |",
        "|" + "---|" * (len(columns) + 1),
    ]
    for label, title in ENGINE_LABELS:
        if not label.startswith("keras_pvt_") or label in ("keras_pvt_tflite", "keras_pvt_openvino_ir"):
            continue
        cells = []
        for variant, batch in columns:
            seconds = ((_row(run, variant, batch).get(label) or {}).get("facts") or {}).get("first_call_s")
            cells.append("n/a" if seconds is None else f"{seconds:.1f}")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    ratios = []
    for variant, batch in columns:
        row = _row(run, variant, batch)
        ours, peer = row.get("keras_pvt_default") or {}, row.get("timm_openvino") or {}
        ok = "per_s" in ours and "per_s" in peer
        ratios.append(f"{ours['per_s'] / peer['per_s']:.2f}x" if ok else "n/a")
    lines.append("| default / timm -> ONNX -> OpenVINO (speed) | " + " | ".join(ratios) + " |")
    return [*lines, ""]


def _bf16_lines(run: dict[str, Any], columns: list[tuple[str, int]]) -> list[str]:
    if not any(run["results"].get(f"deploy_{v}", {}).get("bfloat16_rows", True) for v in VARIANTS):
        return [
            "bfloat16 rows: not run (this CPU has no bfloat16 arithmetic: no AVX512-BF16, no AMX; "
            "OpenVINO's bf16 hint would run float32).",
            "",
        ]
    lines = [
        "bfloat16 beside it (OpenVINO's INFERENCE_PRECISION_HINT; the precision the compiled model "
        "reports in brackets; accuracy cost vs the float32 framework on the same random images: "
        f"centred relative error of the logits, top-1 agreement; flagged beyond {TOLERANCES['bf16']:g}):",
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
            cells.append(rate(summary, _skipped(run, variant, label)) + precision + flag(summary, "bf16"))
            error = errors_of(summary).get("reference")
            if error is not None:
                costs.append(f"{variant}/{batch}: {error:.1e}, {facts['top1_agreement']:.0%}")
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


def _float32_checks(run: dict[str, Any], checks: list[list[str]]) -> None:
    from keras_pvt.presets import get_config

    peak = run["results"].get("roofline", {}).get("peak_gflops")
    for variant in VARIANTS:
        for batch in BATCHES:
            row = _row(run, variant, batch)
            if not row:
                continue
            ours = fastest(row, OURS)
            where = f"{variant} batch {batch}"
            # Ours ran but every row of ours disagrees with its reference: each check fails.
            broken = ours is None and any("median_s" in row.get(label, {}) for label in OURS)
            why = "every row of ours disagrees with its reference" if broken else ""
            for name, peers in (
                ("deployment speed-up over the fastest peer", PEERS),
                ("deployment speed-up over the fastest framework runtime", FRAMEWORK_PEERS),
            ):
                peer = fastest(row, peers)
                ratio = row[ours]["per_s"] / row[peer]["per_s"] if ours and peer else None
                detail = f"{ours} vs {peer}" if ratio else why
                checks.append(check(name, ratio, True, where, detail, broken))
            if batch == 16:
                share = None
                if ours and peak:
                    share = get_config(variant).flops(224) * row[ours]["per_s"] / 1e9 / peak
                detail = f"{ours}: {share * peak:.0f} of {peak:.0f} GFLOP/s" if share is not None else why
                checks.append(check("share of the float32 roofline", share, True, where, detail, broken))
