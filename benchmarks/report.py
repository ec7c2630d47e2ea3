"""Turn a benchmark run into `bench.json`, `bench.md` (tables, ratios, targets) and a scaling plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from report_deploy import deploy_section

PEERS = ("timm", "kecam")
BASELINE_SUFFIX = "@base"  # label of a keras-pvt contestant run from `--baseline REV`


def _cell(run: dict[str, Any], group: str, params: dict[str, Any]) -> dict[str, Any]:
    cells = run["results"].get(group, {}).get("cells", {})
    return cells.get(json.dumps(params, sort_keys=True), {})


def _rate(summary: dict[str, Any] | None) -> str:
    if not summary or "per_s" not in summary:
        return "n/a" if not summary else "error"
    return f"{summary['per_s']:.1f} ({summary['per_s_min']:.1f}-{summary['per_s_max']:.1f})"


def _ms(summary: dict[str, Any] | None) -> str:
    if not summary or "median_s" not in summary:
        return "n/a" if not summary else "error"
    return f"{1e3 * summary['median_s']:.2f} ({1e3 * summary['min_s']:.2f}-{1e3 * summary['max_s']:.2f})"


def _best_peer(row: dict[str, Any]) -> tuple[str, float] | None:
    rates = [(p, row[p]["per_s"]) for p in PEERS if "per_s" in row.get(p, {})]
    return max(rates, key=lambda item: item[1]) if rates else None


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("MET" if ok else "NOT MET")


def inference_section(run: dict[str, Any], targets: list[list[str]]) -> list[str]:
    if not any(group.startswith("infer_") for group in run["results"]):
        return []
    labels = ["keras_pvt", "keras_pvt_frozen", "keras_pvt_tf_function", "keras_pvt_bf16", "timm", "kecam"]
    # The target is judged for `compile_inference(model)` and, separately, with `freeze_weights=True`.
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
            row = _cell(run, f"infer_{variant}", {"batch": batch, "size": 224})
            if not row:
                continue
            best = _best_peer(row)
            ratios = []
            for label, suffix in judged.items():
                ratio = row[label]["per_s"] / best[1] if best and "per_s" in row.get(label, {}) else None
                ratios.append("n/a" if ratio is None else f"{ratio:.2f}x vs {best[0]}")
                targets.append(
                    [
                        f"{variant} inference batch {batch} >= 1.5x faster peer{suffix}",
                        "n/a" if ratio is None else f"{ratio:.2f}x",
                        _verdict(None if ratio is None else ratio >= 1.5),
                    ]
                )
            lines.append(
                f"| {variant} | {batch} | "
                + " | ".join(_rate(row.get(k)) for k in labels)
                + " | "
                + " | ".join(ratios)
                + " |"
            )
    return [*lines, ""]


def train_section(run: dict[str, Any], targets: list[list[str]]) -> list[str]:
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
                *(_rate(row.get(k)) for k in ("keras_pvt", "timm", "kecam")),
                "n/a" if ratio is None else f"{ratio:.2f}x",
                "",
            ]
        ).strip()
    )
    targets.append(
        [
            "b0 training step >= 1.2x timm",
            "n/a" if ratio is None else f"{ratio:.2f}x",
            _verdict(None if ratio is None else ratio >= 1.2),
        ]
    )
    return [*lines, ""]


TFLITE_MODES = (("float32", "float32"), ("int8", "int8 (ours: mixed)"), ("int8_full", "int8-full"))


def _ratio(ours: dict[str, Any] | None, other: dict[str, Any] | None) -> float | None:
    """Median time of `ours` over `other`'s (None unless both ran)."""
    if ours and other and "median_s" in ours and "median_s" in other:
        return ours["median_s"] / other["median_s"]
    return None


def _size_ratio(ours: dict[str, Any] | None, other: dict[str, Any] | None) -> float | None:
    """File size of `ours` over `other`'s, from the cells' facts."""
    sizes = [(summary or {}).get("facts", {}).get("file_bytes") for summary in (ours, other)]
    return sizes[0] / sizes[1] if None not in sizes else None


def _mib(summary: dict[str, Any] | None) -> str:
    size = (summary or {}).get("facts", {}).get("file_bytes")
    return "n/a" if size is None else f"{size / 2**20:.2f}"


def _accuracy(summary: dict[str, Any] | None) -> str:
    facts = (summary or {}).get("facts", {})
    if "relative_error" not in facts:
        return "n/a"
    return f"{facts['relative_error']:.1e}, {facts['top1_agreement']:.0%}"


def tflite_section(run: dict[str, Any], targets: list[list[str]]) -> list[str]:
    """B0 .tflite latency at batch 1; appends issue 17's int8 targets (ours mixed int8 vs our
    float32 file and kecam's int8, and the file size)."""
    if "tflite_b0" not in run["results"]:
        return []
    lines = [
        "## TFLite b0, batch 1, latency ms (median, min-max)",
        "",
        'Ours: `convert_to_tflite` ("int8": mixed int8, "int8-full": every op integer); kecam: '
        "the plain converter (its int8: every op integer). Outputs vs the file's own Keras model: "
        "relative error of the outputs, top-1 agreement (random weights and images).",
        "",
        "| model | threads | keras_pvt | kecam | keras_pvt / kecam | MiB (ours / kecam) | ours vs Keras |",
        "|---|---|---|---|---|---|---|",
    ]
    for quant, title in TFLITE_MODES:
        for threads in (1, 2):
            row = _cell(run, "tflite_b0", {"threads": threads})
            ours, peer = row.get(f"keras_pvt_{quant}"), row.get(f"kecam_{quant}")
            ratio = _ratio(ours, peer)
            lines.append(
                f"| {title} | {threads} | {_ms(ours)} | {_ms(peer)} | "
                f"{'n/a' if ratio is None else f'{ratio:.2f}x'} | {_mib(ours)} / {_mib(peer)} | "
                f"{_accuracy(ours)} |"
            )
    for threads in (1, 2):
        row = _cell(run, "tflite_b0", {"threads": threads})
        mixed = row.get("keras_pvt_int8")
        for other, factor, name in (
            ("keras_pvt_float32", 0.6, "our float32 file"),
            ("kecam_int8", 0.25, "kecam's int8"),
        ):
            ratio = _ratio(mixed, row.get(other))
            targets.append(
                [
                    f"b0 .tflite mixed int8 latency, {threads} thread(s), <= {factor}x {name}",
                    "n/a" if ratio is None else f"{ratio:.2f}x",
                    _verdict(None if ratio is None else ratio <= factor),
                ]
            )
    row = _cell(run, "tflite_b0", {"threads": 1})
    size = _size_ratio(row.get("keras_pvt_int8"), row.get("keras_pvt_float32"))
    targets.append(
        [
            "b0 .tflite mixed int8 file size <= 0.35x our float32 file",
            "n/a" if size is None else f"{size:.2f}x",
            _verdict(None if size is None else size <= 0.35),
        ]
    )
    return [*lines, ""]


def memory_section(run: dict[str, Any], targets: list[list[str]]) -> list[str]:
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
    ok = None if "keras_pvt" not in peaks or not peer_peaks else peaks["keras_pvt"] <= min(peer_peaks)
    targets.append(
        [
            "b0 batch-16 inference peak memory <= peers'",
            "n/a" if ok is None else f"{peaks['keras_pvt']:.0f} vs {min(peer_peaks):.0f} MiB",
            _verdict(ok),
        ]
    )
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
        row = _cell(run, "scaling", {"batch": 1, "size": size})
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
        cells = [_cell(run, "backends_b0", params).get(label) for params in (one, sixteen)]
        lines.append(f"| {title} | {_ms(cells[0])} | {_ms(cells[1])} |")
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
                    f"| {group} | {key} | {label} | {_ms(after)} | {_ms(before)} | {ratio} | {spread} |"
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


def _cpu_features(machine: dict[str, Any]) -> str:
    """The CPU features that matter here, saying outright whether AMX and AVX512-BF16 are there."""
    flags = machine.get("cpu_flags")
    if flags is None:  # a run recorded before the flags were
        return f"AMX-BF16: {machine['amx_bf16']}"
    amx = "AMX" if any(f.startswith("amx") for f in flags) else "no AMX"
    bf16 = "AVX512-BF16" if "avx512_bf16" in flags else "no AVX512-BF16"
    return f"{bf16}, {amx} (flags: {' '.join(flags) or 'none listed'})"


def machine_lines(run: dict[str, Any]) -> list[str]:
    m = run["machine"]
    versions: dict[str, str] = {}
    for group in run["results"].values():
        for info in (group.get("workers", {}) if isinstance(group, dict) else {}).values():
            versions.update(info.get("versions", {}))
    for workers in run["results"].get("memory_b0", {}).values():
        for info in workers.values():
            versions.update(info.get("versions", {}))
    versions.pop("keras_pvt_source", None)  # the baseline's folder: named in its own section
    return [
        f"Machine: {m['cpu_model']}, {m['usable_cpus']} usable of {m['logical_cpus']} logical CPUs, "
        f"{m['memory_gib']} GiB, {_cpu_features(m)}; {m['os']}; Python {m['python']}.",
        f"Versions: {', '.join(f'{k} {v}' for k, v in sorted(versions.items()))}.",
        f"Run at {m['time']}, {run['duration_s'] / 60:.1f} min; load average before "
        f"{'/'.join(f'{x:.2f}' for x in m['load_average'])}, after "
        f"{'/'.join(f'{x:.2f}' for x in run['load_average_after'])}"
        + (" (quick run: few samples, noisy)." if run["quick"] else "."),
        "Contestants alternate run by run in their own processes; min-max is over all samples.",
        "",
    ]


def _targets_table(title: str, targets: list[list[str]]) -> list[str]:
    if not targets:
        return []
    rows = [f"| {target} | {measured} | {status} |" for target, measured, status in targets]
    return [f"## Targets ({title})", "", "| target | measured | status |", "|---|---|---|", *rows, ""]


def write_reports(run: dict[str, Any], output: Path) -> list[Path]:
    """Write bench.json, bench.md and resolution_scaling.png under `output`; return the paths."""
    targets: list[list[str]] = []
    deployment: list[list[str]] = []  # issue 17's targets
    body = (
        inference_section(run, targets)
        + deploy_section(run, deployment)
        + train_section(run, targets)
        + tflite_section(run, deployment)
        + memory_section(run, targets)
        + bf16_section(run)
        + backends_section(run)
        + baseline_section(run)
    )
    scaling, plot = scaling_section(run, output)
    table = [*_targets_table("issue 17: deployment", deployment), *_targets_table("issue 6", targets)]
    markdown = ["# keras-pvt benchmarks", "", *machine_lines(run), *table, *body, *scaling]
    paths = [output / "bench.json", output / "bench.md"]
    paths[0].write_text(json.dumps(run, indent=1))
    paths[1].write_text("\n".join(markdown) + "\n")
    return paths + ([plot] if plot else [])
