"""`keras-pvt variants`: the preset table (parameters, GFLOPs, minimum input size)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("variants", help="list the PVT-v2 presets with params and GFLOPs")
    parser.add_argument("--size", type=int, default=224, help="input side for the FLOP count")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.set_defaults(func=run)


def variant_rows(size: int = 224) -> list[dict[str, object]]:
    """One row per preset; parameters and FLOPs are counted from the config (nothing is built, so
    the table prints at once)."""
    from keras_pvt.presets import VARIANTS

    rows = []
    for name, variant in VARIANTS.items():
        config = variant.config
        rows.append(
            {
                "variant": name,
                "params": config.num_parameters(),
                "gflops": config.flops(size) / 1e9,
                "depths": "-".join(map(str, config.depths)),
                "widths": "-".join(map(str, config.embed_dims)),
                "linear": config.linear,
                "min_size": config.min_input_size(),
                "ade20k_miou": variant.ade20k_miou,
                "coco_ap": variant.coco_retinanet_ap,
            }
        )
    return rows


def run(args: argparse.Namespace) -> int:
    rows = variant_rows(args.size)
    header = [
        "variant",
        "params",
        f"GFLOPs@{args.size}",
        "depths",
        "widths",
        "linear",
        "min size",
        "ADE20K mIoU (paper)",
        "COCO box AP (paper)",
    ]
    lines = [
        [
            r["variant"],
            f"{r['params']:,}",
            f"{r['gflops']:.2f}",
            r["depths"],
            r["widths"],
            "yes" if r["linear"] else "no",
            str(r["min_size"]),
            "-" if r["ade20k_miou"] is None else f"{r['ade20k_miou']:.1f}",
            "-" if r["coco_ap"] is None else f"{r['coco_ap']:.1f}",
        ]
        for r in rows
    ]
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(map(str, line)) + " |")
    else:
        widths = [max(len(str(c)) for c in col) for col in zip(header, *lines)]
        for line in [header, *lines]:
            print("  ".join(str(c).ljust(w) for c, w in zip(line, widths)))
    return 0
