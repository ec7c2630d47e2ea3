"""What the benchmarks ran on: CPU model and the SIMD features that matter here, cores, memory, load, OS,
Python and library versions; and the provenance lines every result file starts with."""

from __future__ import annotations

import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


# CPU features that decide which kernels the engines use: AVX2 + FMA (every x86 engine's float32
# baseline), AVX-512 (XNNPACK, oneDNN, OpenVINO), the int8 dot products (AVX512-VNNI, AVX-VNNI),
# bfloat16 arithmetic (AVX512-BF16) and AMX (the tile units bf16/int8 matmuls go fastest on).
RELEVANT_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)
# How each SIMD class is named in the reports, and the /proc/cpuinfo flags that make it present.
SIMD_CLASSES = (
    ("AVX-512", ("avx512f",)),
    ("VNNI", ("avx512_vnni",)),
    ("AVX-VNNI", ("avx_vnni",)),
    ("AVX512-BF16", ("avx512_bf16",)),
    ("AMX", ("amx_tile", "amx_bf16", "amx_int8")),
)


def simd_summary(flags: list[str] | set[str]) -> str:
    """Every SIMD class stated as present or absent, e.g. "AVX2 + FMA, no AVX-512, no VNNI, no
    AVX-VNNI, no AVX512-BF16, no AMX" (VNNI: AVX512-VNNI; AMX lists its tile types)."""
    flags = set(flags)
    base = " + ".join(name for name, flag in (("AVX2", "avx2"), ("FMA", "fma")) if flag in flags)
    parts = [base or "no AVX2, no FMA"]
    for name, needed in SIMD_CLASSES:
        present = [flag for flag in needed if flag in flags]
        if not present:
            parts.append(f"no {name}")
        elif name == "AMX":
            parts.append(f"AMX ({', '.join(flag.removeprefix('amx_') for flag in present)})")
        else:
            parts.append(name)
    return ", ".join(parts)


def machine_info() -> dict[str, Any]:
    """A JSON-able description of this machine and its current load."""
    cpu = _cpuinfo()
    flags = set(cpu.get("flags", "").split())
    return {
        "cpu_model": cpu.get("model name", platform.processor()),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "amx_bf16": "amx_bf16" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "cpu_flags": [flag for flag in RELEVANT_FLAGS if flag in flags],
        "simd": simd_summary(flags),
        "memory_gib": _mem_total_gib(),
        "hostname": platform.node(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def installed_versions(distributions: tuple[str, ...]) -> dict[str, str]:
    """Versions of those of `distributions` installed in this interpreter's environment."""
    found = {}
    for name in distributions:
        try:
            found[name.replace("-", "_")] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def environment_name(python: str | Path | None = None) -> str:
    """A short name for the virtual environment of `python` (default: this one): its folder's
    name, e.g. ".venv", "kecam", "zm"."""
    path = Path(python or sys.executable)
    return path.parent.parent.name if path.parent.name == "bin" else str(path)


def _load(values: Any) -> str:
    return "/".join(f"{x:.2f}" for x in values) if values else "not recorded"


def simd_of(machine: dict[str, Any]) -> str:
    """The SIMD summary of a recorded machine (older records: from their flags)."""
    if "simd" in machine:
        return machine["simd"]
    if "cpu_flags" in machine:
        return simd_summary(machine["cpu_flags"])
    return "SIMD features not recorded"


def provenance_lines(
    machine: dict[str, Any],
    load_after: Any,
    versions: dict[str, dict[str, str]],
    duration_s: float | None = None,
) -> list[str]:
    """The lines every result file starts with: date, machine, CPU model and SIMD features, the
    library versions of each environment that ran (`versions`: environment -> {library: version}),
    and the load average before and after."""
    took = f", {duration_s / 60:.1f} min" if duration_s is not None else ""
    cpus = machine.get("usable_cpus")
    lines = [
        f"Run: {machine.get('time', 'time not recorded')}{took}"
        + (f", on host {machine['hostname']}." if machine.get("hostname") else "."),
        "",
        f"Machine: {machine.get('cpu_model', 'CPU not recorded')}, {cpus} usable of "
        f"{machine.get('logical_cpus')} logical CPUs, {machine.get('memory_gib')} GiB; SIMD: "
        f"{simd_of(machine)}; {machine.get('os', '')}; Python {machine.get('python', '?')}.",
        "",
        f"Load average (1/5/15 min) before {_load(machine.get('load_average'))}, after "
        f"{_load(load_after)}"
        + (
            f": a load above the {cpus} usable CPUs means other processes shared the machine."
            if cpus
            else "."
        ),
        "",
        "Versions, per environment:" if versions else "Versions: not recorded.",
        "",
    ]
    for environment, found in sorted(versions.items()):
        listed = ", ".join(f"{name} {value}" for name, value in sorted(found.items())) or "none recorded"
        lines.append(f"- `{environment}`: {listed}")
    return [*lines, ""]
