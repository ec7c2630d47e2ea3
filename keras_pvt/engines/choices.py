"""The `engine_cache` file of engine="measure": the engine chosen for each machine, model, threads and shape.

A small JSON object ``{"format": "keras-pvt-engine-choices", "choices": {key: {"engine": NAME,
"ms": {engine: median ms}}}}``, read when `compile_inference` is called and rewritten (beside and
renamed into place, `keras_pvt._safe_write`) after each new measurement, merged with what another
process may have written meanwhile. A key names the CPU, the model (name, parameter count and a
hash of its config), the threads and the input shape, so one file can serve several of each.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

import keras

from keras_pvt._safe_write import MAX_REPORT_BYTES, OutputKind, OutputRefusedError, atomic_write, check_output

CHOICES_FORMAT = "keras-pvt-engine-choices"


def _is_choices_file(path: Path) -> bool:
    return _read(path) is not None


def _read(path: Path) -> dict[str, Any] | None:
    """The file's choices, or None if it is not a choices file of ours."""
    try:
        if path.stat().st_size > MAX_REPORT_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("format") != CHOICES_FORMAT:
        return None
    choices = data.get("choices")
    return choices if isinstance(choices, dict) else None


def refuse_foreign_file(path: Path) -> None:
    """`OutputRefusedError` if a file stands at `path` that is not a choices file of ours.

    Stricter than `keras_pvt._safe_write`, which takes an empty file as holding nothing: a file the
    user made, even empty (``touch``), is theirs and is never replaced.
    """
    if not path.is_file() or path.is_symlink() or _is_choices_file(path):
        return  # missing (created later), or refused by `check_output` with its own message
    found = "an empty file" if path.stat().st_size == 0 else "a file that is not keras-pvt's JSON"
    raise OutputRefusedError(
        f"engine_cache={str(path)!r} is {found} (an engine choices file is {ENGINE_CHOICES.proof}); "
        "keras-pvt never replaces a file it did not write. Pass a path that does not exist yet "
        f"(keras-pvt creates it, e.g. {str(path.parent / ENGINE_CHOICES.example)!r}), or one it wrote before."
    )


ENGINE_CHOICES = OutputKind(
    name="engine choices file",
    directory=False,
    suffix=".json",
    example="engine_choices.json",
    proof=f"a JSON object with format {CHOICES_FORMAT!r}",
    recognise=_is_choices_file,
)


def cpu_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo) and the number of CPUs."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} x{os.cpu_count()}"


def model_key(model: keras.Model) -> str:
    """The model's name, parameter count and a short hash of its config."""
    config = json.dumps(model.get_config(), sort_keys=True, default=str)
    digest = hashlib.sha256(config.encode("utf-8")).hexdigest()[:12]
    return f"{model.name} params={model.count_params()} config={digest}"


class ChoicesFile:
    """The choices file at `path` (None: no file, choices kept in memory only)."""

    def __init__(self, path: str | os.PathLike | None, model: keras.Model, threads: int) -> None:
        self.path = None if path is None else Path(path)
        self._prefix = f"{cpu_name()} | {model_key(model)} | threads={threads}"
        if self.path is not None:
            refuse_foreign_file(self.path)  # refuse a user's file now, before any work
            check_output(self.path, ENGINE_CHOICES, overwrite=True)

    def key(self, shape: tuple[int, ...]) -> str:
        return f"{self._prefix} | shape={'x'.join(str(d) for d in shape)}"

    def lookup(self, shape: tuple[int, ...]) -> str | None:
        """The engine chosen earlier for `shape`, if the file has one."""
        if self.path is None or not self.path.is_file():
            return None
        entry = (_read(self.path) or {}).get(self.key(shape))
        return entry.get("engine") if isinstance(entry, dict) else None

    def record(self, shape: tuple[int, ...], engine: str, timings: dict[str, float]) -> None:
        """Add the choice for `shape` to the file (merged with its current content)."""
        if self.path is None:
            return
        choices = (_read(self.path) if self.path.is_file() else None) or {}
        refuse_foreign_file(self.path)  # replaced by a user's file since: still never replaced
        choices[self.key(shape)] = {"engine": engine, "ms": {k: round(v, 3) for k, v in timings.items()}}
        text = json.dumps({"format": CHOICES_FORMAT, "choices": choices}, indent=1, sort_keys=True)
        atomic_write(
            self.path,
            lambda stage: stage.write_text(text + "\n", encoding="utf-8"),
            ENGINE_CHOICES,
            overwrite=True,
        )
