"""Sizes of export artifacts on disk (writing them safely is `keras_pvt._safe_write`)."""

from __future__ import annotations

import os
from pathlib import Path


def size_on_disk(path: str | os.PathLike) -> int:
    """Bytes of a file, or of every file under a folder."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
