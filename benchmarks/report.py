"""Turn a benchmark run into `bench.json`, `bench.md` (provenance, tables, ratios, checks) and a scaling
plot. The checks' bounds are `report_common.TARGETS`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from machine import provenance_lines
from report_common import TARGETS, cell, check, environments, ms, rate
from report_deploy import deploy_section
from report_tflite import tflite_section

PEERS = ("timm", "kecam")  # the peers the "inference", "train" and "memory" groups run
BASELINE_SUFFIX = "@base"  # label of a keras-pvt contestant run from `--baseline REV`


def _best_peer(row: dict[str, Any]) -> tuple[str, float] | None:
    rates = [(p, row[p]["per_s"]) for p in PEERS if "per_s" in row.get(p, {})]
    return max(rates, key=lambda item: item[1]) if rates else None


def inference_section(run: dict[str, Any], checks: list[list[str]]) -> list[str]:
    if not any(group.startswith("infer_") for group in run["results"]):
        return []
    labels = ["keras_pvt", "keras_pvt_frozen", "keras_pvt_tf_function", "keras_pvt_bf16", "timm", "kecam"]
    # The check is made for `compile_inference(model)` and, separately, with `freeze_weights=True`.
    judged = {"keras_pvt": "", "keras_pvt_frozen": " (freeze_weights=True)"}
    lines = [
        "## Inference, images/s at 224x224 (median, min-max)",
        "",
        "| variant | batch | "
        + " | ".join(labels)
        + " | "
        + " | ".join(f"{label} / faster peer" for label in judged)
        + " |",
        "|" + "---|" * (len(labels) + 2 + len(judged)),
    ]
    for variant in ("b0", "b2"):
        for batch in (1, 16):
            row = cell(run, f"infer_{variant}", {"batch": batch, "size": 224})
            if not row:
                continue
            best = _best_peer(row)
            ratios = []
            for label, suffix in judged.items():
                ratio = row[label]["per_s"] / best[1] if best and "per_s" in row.get(label, {}) else None
                ratios.append("n/a" if ratio is None else f"{ratio:.2f}x vs {best[0]}")
                where = f"{variant} batch {batch}{suffix}"
                name = "inference speed-up over the fastest peer"
                checks.append(check(name, ratio, True, where, f"vs {best[0]}" if ratio else ""))
            lines.append(
                f"| {variant} | {batch} | "
                + " | ".join(rate(row.get(k)) for k in labels)
                + " | "
                + " | ".join(ratios)
                + " |"
            )
    return [*lines, ""]


def train_section(run: dict[str, Any], checks: list[list[str]]) -> list[str]:
    group = run["results"].get("train_b0")
    if not group:
        return []
    ((key, row),) = group["cells"].items()
    params = json.loads(key)
    lines = [
        f"## Training step, b0, batch {params['batch']} at 224 (images/s, AdamW)",
        "",
        "| keras_pvt | timm | kecam | keras_pvt / timm |",
        "|---|---|---|---|",
    ]
    ratio = None
    if "per_s" in row.get("keras_pvt", {}) and "per_s" in row.get("timm", {}):
        ratio = row["keras_pvt"]["per_s"] / row["timm"]["per_s"]
    lines.append(
        " | ".join(
            [
                "",
                *(rate(row.get(k)) for k in ("keras_pvt", "timm", "kecam")),
                "n/a" if ratio is None else f"{ratio:.2f}x",
                "",
            ]
        ).strip()
    )
    checks.append(check("training speed-up over timm", ratio, True, f"b0 batch {params['batch']}"))
    return [*lines, ""]


def memory_section(run: dict[str, Any], checks: list[list[str]]) -> list[str]:
    memory = run["results"].get("memory_b0")
    if not memory:
        return []
    lines = [
        "## Peak memory, b0 inference at batch 16 (fresh process each, MiB)",
        "",
        "| implementation | peak RSS | RSS after imports | peak - imports |",
        "|---|---|---|---|",
    ]
    peaks = {}
    for label, workers in memory.items():
        info = workers.get(label, {})
        if "peak_rss_mb" not in info:
            lines.append(f"| {label} | {info.get('skipped') or info.get('error', 'n/a')} | | |")
            continue
        peaks[label] = info["peak_rss_mb"]
        lines.append(
            f"| {label} | {info['peak_rss_mb']:.0f} | {info['rss_mb']:.0f} | "
            f"{info['peak_rss_mb'] - info['rss_mb']:.0f} |"
        )
    peer_peaks = [peaks[p] for p in PEERS if p in peaks]
    ratio = peaks["keras_pvt"] / min(peer_peaks) if "keras_pvt" in peaks and peer_peaks else None
    detail = f"{peaks['keras_pvt']:.0f} vs {min(peer_peaks):.0f} MiB" if ratio is not None else ""
    checks.append(check("peak memory over the lowest peer's", ratio, False, "b0 batch 16", detail))
    return [*lines, ""]


def scaling_section(run: dict[str, Any], output: Path) -> tuple[list[str], Path | None]:
    group = run["results"].get("scaling")
    if not group:
        return [], None
    from keras_pvt.presets import get_config

    sizes = group["sizes"]
    series: dict[str, list[float | None]] = {"b2": [], "b2_li": []}
    lines = [
        "## Resolution scaling, keras_pvt `compile_inference`, batch 1 (ms per image)",
        "",
        "| size | b2 ms | b2 GFLOPs* | b2_li ms | b2_li GFLOPs* | b2 / b2_li time |",
        "|---|---|---|---|---|---|",
    ]
    for size in sizes:
        row = cell(run, "scaling", {"batch": 1, "size": size})
        cells = []
        for variant in series:
            summary = row.get(f"keras_pvt_{variant}", {})
            value = 1e3 * summary["median_s"] if "median_s" in summary else None
            series[variant].append(value)
            gflops = get_config(variant).flops(size) / 1e9
            cells += ["n/a" if value is None else f"{value:.1f}", f"{gflops:.1f}"]
        b2, li = series["b2"][-1], series["b2_li"][-1]
        ratio = f"{b2 / li:.2f}" if b2 and li else "n/a"
        lines.append(f"| {size} | " + " | ".join(cells) + f" | {ratio} |")
    lines += [
        "",
        "*GFLOPs = 2 x multiply-accumulates, from `PVTV2Config.flops` (published "
        "figures count MACs: half these).",
    ]
    plot = _plot(sizes, series, output / "resolution_scaling.png")
    if plot:
        lines += ["", f"![resolution scaling]({plot.name})"]
    return [*lines, ""], plot


def _plot(sizes: list[int], series: dict[str, list[float | None]], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    from keras_pvt.presets import get_config

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for variant, values in series.items():
        points = [(s, v) for s, v in zip(sizes, values) if v is not None]
        if points:
            left.plot(*zip(*points), marker="o", label=f"{variant} (measured)")
        right.plot(sizes, [get_config(variant).flops(s) / 1e9 for s in sizes], marker="s", label=f"{variant}")
    left.set(
        xlabel="input side (pixels)", ylabel="ms per image (batch 1)", yscale="log", title="keras-pvt latency"
    )
    right.set(xlabel="input side (pixels)", ylabel="GFLOPs", yscale="log", title="analytic cost")
    for axis in (left, right):
        axis.grid(True, alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def bf16_section(run: dict[str, Any]) -> list[str]:
    accuracy = run["results"].get("bf16_accuracy")
    if not accuracy:
        return []
    if "error" in accuracy:
        return ["## bfloat16 accuracy cost", "", f"error: {accuracy['error'][-300:]}", ""]
    lines = [
        "## bfloat16 accuracy cost (random weights, random images, logits)",
        "",
        "| variant | images | relative error | max abs diff (max abs logit) | top-1 agreement |",
        "|---|---|---|---|---|",
    ]
    for variant, a in accuracy.items():
        lines.append(
            f"| {variant} | {a['images']} | {a['logits_relative_error']:.2e} | "
            f"{a['logits_max_abs_diff']:.2e} ({a['logits_max_abs']:.2e}) | "
            f"{a['top1_agreement']:.0%} |"
        )
    return [*lines, ""]


BACKEND_ROWS = (
    ("tensorflow", "TensorFlow, `compile_inference`"),
    ("tensorflow_tf_function", "TensorFlow, plain `tf.function`"),
    ("jax", "JAX, `compile_inference` (jit, shifted depthwise conv)"),
    ("jax_plain", "JAX, jit of the plain kernels"),
    ("torch", "PyTorch, `compile_inference` (no_grad)"),
    ("torch_plain", "PyTorch, the model called as is"),
)


def backends_section(run: dict[str, Any]) -> list[str]:
    """B0 on Keras' three backends: ms per batch of 1 and of 16 images (median, min-max)."""
    if "backends_b0" not in run["results"]:
        return []
    lines = [
        "## keras-pvt B0 on each Keras backend, 224x224 (ms per batch: median (min-max))",
        "",
        "| backend, path | batch 1 | batch 16 |",
        "|---|---|---|",
    ]
    one, sixteen = ({"batch": b, "size": 224} for b in (1, 16))
    for label, title in BACKEND_ROWS:
        cells = [cell(run, "backends_b0", params).get(label) for params in (one, sixteen)]
        lines.append(f"| {title} | {ms(cells[0])} | {ms(cells[1])} |")
    return [*lines, ""]


def _speedup(after: dict[str, Any], before: dict[str, Any]) -> tuple[str, str]:
    """Median-time ratio before / after (>1: the working tree is faster) and its range over rounds."""
    if "median_s" not in after or "median_s" not in before:
        return "n/a", "n/a"
    pairs = zip(before["round_medians_s"], after["round_medians_s"])
    per_round = [b / a for b, a in pairs]
    spread = f"{min(per_round):.2f}-{max(per_round):.2f}" if per_round else "n/a"
    return f"{before['median_s'] / after['median_s']:.3f}", spread


def baseline_section(run: dict[str, Any]) -> list[str]:
    baseline = run.get("baseline")
    if not baseline:
        return []
    lines = [
        f"## Before and after: working tree vs keras-pvt at {baseline['revision']} "
        f"({baseline['commit'][:12]})",
        "",
        "Each pair ran next to each other in every round. Speed-up = baseline median time / working",
        "tree median time (above 1: the working tree is faster); per round: the same ratio of round",
        "medians, whose range shows the noise.",
        "",
        "| group | params | contestant | working tree ms | baseline ms | speed-up | per round |",
        "|---|---|---|---|---|---|---|",
    ]
    for group, result in run["results"].items():
        for key, row in (result.get("cells", {}) if isinstance(result, dict) else {}).items():
            for label, after in row.items():
                before = row.get(label + BASELINE_SUFFIX)
                if label.endswith(BASELINE_SUFFIX) or before is None:
                    continue
                ratio, spread = _speedup(after, before)
                lines.append(
                    f"| {group} | {key} | {label} | {ms(after)} | {ms(before)} | {ratio} | {spread} |"
                )
    lines += _baseline_memory(run)
    return [*lines, ""]


def _baseline_memory(run: dict[str, Any]) -> list[str]:
    memory = run["results"].get("memory_b0", {})
    lines = []
    for label, workers in memory.items():
        twin = label + BASELINE_SUFFIX
        after, before = workers.get(label, {}), memory.get(twin, {}).get(twin, {})
        if "peak_rss_mb" in after and "peak_rss_mb" in before:
            lines.append(f"| {label} | {after['peak_rss_mb']:.0f} | {before['peak_rss_mb']:.0f} |")
    if not lines:
        return []
    header = "| b0 batch 16, fresh process | working tree peak RSS MiB | baseline peak RSS MiB |"
    return ["", header, "|---|---|---|", *lines]


def machine_lines(run: dict[str, Any]) -> list[str]:
    """Where the numbers came from: date, machine, CPU and SIMD features, load, every environment's
    library versions."""
    lines = provenance_lines(
        run["machine"], run.get("load_average_after"), environments(run), run.get("duration_s")
    )
    quick = " Quick run (`--quick`): few samples, noisy; not for quoting." if run.get("quick") else ""
    return [
        *lines,
        "Contestants alternate run by run in their own processes; min-max is over all samples." + quick,
        "",
    ]


def _checks_table(checks: list[list[str]]) -> list[str]:
    if not checks:
        return []
    rows = [f"| {name} | {measured} | {status} |" for name, measured, status in checks]
    bounds = ", ".join(f"{name} {bound:g}" for name, bound in TARGETS.items())
    return [
        "## Checks",
        "",
        f"Bounds from `benchmarks/report_common.py` TARGETS ({bounds}).",
        "",
        "| check | measured | status |",
        "|---|---|---|",
        *rows,
        "",
    ]


def write_reports(run: dict[str, Any], output: Path) -> list[Path]:
    """Write bench.json, bench.md and resolution_scaling.png under `output`; return the paths."""
    checks: list[list[str]] = []
    body = (
        inference_section(run, checks)
        + deploy_section(run, checks)
        + train_section(run, checks)
        + tflite_section(run, checks)
        + memory_section(run, checks)
        + bf16_section(run)
        + backends_section(run)
        + baseline_section(run)
    )
    scaling, plot = scaling_section(run, output)
    markdown = ["# keras-pvt benchmarks", "", *machine_lines(run), *_checks_table(checks), *body, *scaling]
    paths = [output / "bench.json", output / "bench.md"]
    paths[0].write_text(json.dumps(run, indent=1))
    paths[1].write_text("\n".join(markdown) + "\n")
    return paths + ([plot] if plot else [])
