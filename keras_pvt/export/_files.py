"""Write-then-rename helpers: an output path only ever holds a complete, verified artifact."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def staged_output(path: str | os.PathLike, *, directory: bool) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; on success move it to `path`, on error delete it.

    An existing `path` is replaced only after the body finished without raising, so a failed export
    leaves neither a partial file nor a damaged previous one.
    """
    final = Path(path)
    parent = final.parent if str(final.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(
            f"Output folder {str(parent)!r} does not exist; create it or choose another --output."
        )
    prefix = f".{final.name}.partial-"
    if directory:
        stage = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    else:
        handle, name = tempfile.mkstemp(prefix=prefix, dir=parent)
        os.close(handle)
        stage = Path(name)
    try:
        yield stage
        remove(final)
        os.replace(stage, final)
    except BaseException:
        remove(stage)
        raise


def remove(path: Path) -> None:
    """Delete a file or a folder tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def size_on_disk(path: str | os.PathLike) -> int:
    """Bytes of a file, or of every file under a folder."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
