"""B0 training step (AdamW, batch 16, 224x224) in each mode of `worker_training_modes.py`, beside the
same step at a git revision, alternating run by run in their own processes (`orchestrate.compare`).

    .venv/bin/python benchmarks/training_modes.py --baseline 63d6648 --rounds 5 --modes user,rewrite

Writes `training_modes.md` and `.json` under ``--output``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import orchestrate  # noqa: E402
from machine import machine_info, provenance_lines  # noqa: E402
from report_common import environments, rate  # noqa: E402
from run_all import baseline_tree, resolve_revision  # noqa: E402

orchestrate.WORKERS["keras_pvt_training"] = "worker_training_modes.py"
orchestrate.VENVS["keras_pvt_training"] = "keras_pvt"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="63d6648")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--modes", default="user,rewrite")
    parser.add_argument("--output", type=Path, default=HERE / "results")
    args = parser.parse_args()
    machine, started = machine_info(), time.time()
    pythons = orchestrate.interpreters(Path("/nonexistent"))  # keras-pvt's own venv only
    params = [{"batch": args.batch, "size": 224}]
    with baseline_tree(resolve_revision(args.baseline)) as source:
        task = {"variant": "b0"}
        contestants = [
            orchestrate.Contestant(
                "before (user compile)", "keras_pvt_training", {**task, "mode": "user", "source": str(source)}
            ),
            *(
                orchestrate.Contestant(f"after ({mode})", "keras_pvt_training", {**task, "mode": mode})
                for mode in args.modes.split(",")
            ),
        ]
        result = orchestrate.compare(
            contestants, params, args.rounds, args.iters, pythons, args.output / "logs"
        )
    run = {"machine": machine, "results": {"train": result}, "load_average_after": os.getloadavg()}
    run["duration_s"] = time.time() - started
    cells = result["cells"][json.dumps(params[0], sort_keys=True)]
    before = cells["before (user compile)"].get("median_s")
    lines = [
        f"# Training step, B0, batch {args.batch}, 224x224, AdamW: modes beside {args.baseline}",
        "",
        *provenance_lines(machine, run["load_average_after"], environments(run), run["duration_s"]),
        f"Images/s, median (min-max) of {args.rounds} alternating rounds of {args.iters} steps, each row "
        "in its own process. Ratio: the row's speed over the first row's (above 1: faster).",
        "",
        "| row | images/s | ratio |",
        "|---|---|---|",
    ]
    for label, summary in cells.items():
        ratio = before / summary["median_s"] if before and summary.get("median_s") else float("nan")
        lines.append(f"| {label} | {rate(summary)} | {ratio:.3f} |")
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "training_modes.json").write_text(json.dumps(run, indent=1, default=str) + "\n")
    (args.output / "training_modes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
