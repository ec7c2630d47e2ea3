"""Write outputs without ever destroying what a user owns.

An output is written to a hidden sibling (``.NAME.partial-PID-TOKEN[SUFFIX]``) and renamed into place
only once complete. Whatever already stands at the output path is replaced only when it is provably a
previous output of the same kind *and* the caller asked (``overwrite=True`` / ``--overwrite``); the
current folder, its parents, the inputs, links and wrong-type paths are always refused. Staging
siblings that a killed process left behind (its PID no longer runs) are cleaned up on the next write
to the same path; a folder that a kill left renamed aside is put back.

Use `atomic_write(path, write, kind)` for "write a file via a callback that writes to a temp path",
`staged_output` as a context manager when the temporary path is needed across several steps, and
`replacing` for a file the caller has already established as its own (training's run files).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import secrets
import shutil
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

StrPath = str | os.PathLike

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier, bytes 4..8
SAVED_MODEL_ENTRIES = {
    "saved_model.pb",
    "saved_model.pbtxt",
    "variables",
    "assets",
    "fingerprint.pb",
    "keras_metadata.pb",
}
MAX_REPORT_BYTES = 16 * 2**20
MAX_IR_XML_BYTES = 256 * 2**20
OPENVINO_IR_MARKER = b"<keras_pvt>"  # the rt_info entry `keras_pvt.export.openvino` writes
ONNX_MARKER = b"keras-pvt-onnx"  # the doc string `keras_pvt.export.onnx` gives its files
ONNX_HEAD_BYTES = 4096  # the doc string (field 6) is serialised before the graph
PRESET_FILES = {"config.json", "metadata.json", "model.weights.h5"}
PRESET_FORMAT = "keras-pvt-preset"  # the "format" entry of a preset's metadata.json
_ASIDE = ".old"  # suffix of a previous output folder renamed aside during a swap


class OutputRefusedError(FileExistsError):
    """Writing the output would destroy something that is not a previous output, or was not asked."""


def _is_saved_model(path: Path) -> bool:
    names = {entry.name for entry in path.iterdir()}
    return (path / "saved_model.pb").is_file() and names <= SAVED_MODEL_ENTRIES


def _is_tflite(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(8)[4:8] == TFLITE_IDENTIFIER


def _is_keras_archive(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return {"config.json", "metadata.json"} <= set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _is_hdf5(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE


def _is_preset(path: Path) -> bool:
    """A keras-pvt preset folder: exactly its three files, metadata.json naming our format."""
    if {entry.name for entry in path.iterdir()} != PRESET_FILES:
        return False
    metadata = path / "metadata.json"
    if not metadata.is_file() or metadata.stat().st_size > MAX_REPORT_BYTES:
        return False
    try:
        data = json.loads(metadata.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and data.get("format") == PRESET_FORMAT


def _is_openvino_xml(path: Path) -> bool:
    """An OpenVINO IR `.xml` that keras-pvt wrote: a ``<net`` whose rt_info has a ``<keras_pvt>`` entry."""
    size = path.stat().st_size
    if size > MAX_IR_XML_BYTES:
        return False
    with path.open("rb") as handle:
        head = handle.read(4096)
        handle.seek(max(0, size - 65536))
        tail = handle.read()
    return head.lstrip().startswith(b"<?xml") and b"<net " in head and OPENVINO_IR_MARKER in tail


def _is_openvino_bin(path: Path) -> bool:
    """The weights of a keras-pvt IR: its `.xml` beside it is ours and names exactly this many bytes."""
    xml = path.with_suffix(".xml")
    if not xml.is_file() or not _is_openvino_xml(xml):
        return False
    text = xml.read_bytes()
    ends = [int(o) + int(s) for o, s in re.findall(rb'offset="([0-9]+)" size="([0-9]+)"', text)]
    return max(ends, default=0) == path.stat().st_size


def _is_onnx(path: Path) -> bool:
    """An ONNX model that keras-pvt wrote: a ModelProto (ir_version first) whose doc string is ours."""
    with path.open("rb") as handle:
        head = handle.read(ONNX_HEAD_BYTES)
    return head[:1] == b"\x08" and ONNX_MARKER in head


def _is_export_report(path: Path) -> bool:
    if path.stat().st_size > MAX_REPORT_BYTES:
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and {"path", "input_shape"} <= set(data)


@dataclasses.dataclass(frozen=True)
class OutputKind:
    """What an output is, how a previous one is recognised, and the suffix its writer needs."""

    name: str
    directory: bool
    suffix: str  # of the staging path (Keras insists on `.keras` / `.weights.h5`)
    example: str  # a path name shown in error messages
    proof: str  # how a previous output is recognised, for error messages
    recognise: Callable[[Path], bool]


# Each kind: name, folder or file, staging suffix, a path shown in messages, what proves it ours.
SAVED_MODEL = OutputKind(
    "SavedModel folder", True, "", "saved_model", "saved_model.pb and SavedModel files only", _is_saved_model
)
TFLITE = OutputKind(
    "TFLite file", False, ".tflite", "model.tflite", "the TFL3 flatbuffer identifier", _is_tflite
)
OPENVINO_XML = OutputKind(
    "OpenVINO IR .xml", False, ".xml", "model.xml", "keras-pvt's <keras_pvt> rt_info entry", _is_openvino_xml
)
OPENVINO_BIN = OutputKind(
    "OpenVINO IR .bin", False, ".bin", "model.bin", "our .xml beside it naming its size", _is_openvino_bin
)
ONNX = OutputKind("ONNX file", False, ".onnx", "model.onnx", "keras-pvt's marker as its doc string", _is_onnx)
KERAS_MODEL = OutputKind(
    ".keras model", False, ".keras", "model.keras", "a zip with config.json, metadata.json", _is_keras_archive
)
KERAS_WEIGHTS = OutputKind(
    ".weights.h5 file", False, ".weights.h5", "model.weights.h5", "the HDF5 signature", _is_hdf5
)
PRESET = OutputKind(
    "keras-pvt preset folder", True, "", "pvt_v2_preset", "our three files, metadata naming us", _is_preset
)
EXPORT_REPORT = OutputKind(
    "export report", False, ".json", "model.report.json", "JSON with path and input_shape", _is_export_report
)


def check_output(
    path: StrPath, kind: OutputKind, *, overwrite: bool = False, inputs: Iterable[StrPath | None] = ()
) -> bool:
    """Raise unless writing `kind` at `path` destroys nothing a user owns; True if it will replace.

    Refused (`OutputRefusedError`): a link; the current folder or a parent of it; an input (or a
    folder holding one); a folder where a file goes or a file where a folder goes; anything that is
    not a previous output of `kind`, an empty file included (it may be a placeholder the user made);
    a previous output without ``overwrite``. An empty folder holds nothing and is replaced. A
    missing parent folder raises FileNotFoundError. Stale staging siblings of `path` are cleaned
    first (`clean_stale`).
    """
    final = Path(path)
    parent = final.parent
    clean_stale(final)
    if not parent.is_dir():
        raise FileNotFoundError(
            f"Output folder {str(parent)!r} does not exist; create it or choose another output path."
        )
    target = final.resolve()
    if final.is_symlink():
        raise OutputRefusedError(
            f"Output {str(final)!r} is a symbolic link; keras-pvt does not replace links. "
            "Give a new path (or the path the link points to)."
        )
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise OutputRefusedError(
            f"Output {str(final)!r} is the current folder or one of its parents; keras-pvt never "
            f"writes over a folder that holds your files. Give a new path, e.g. "
            f"{str(final / kind.example)!r}."
        )
    for given in filter(None, inputs):
        source = Path(given).resolve()
        if target == source or target in source.parents:
            raise OutputRefusedError(
                f"Output {str(final)!r} is (or holds) the input {str(given)!r}; "
                "choose a different output path."
            )
    if not final.exists():
        return False
    return _check_existing(final, kind, overwrite)


def _check_existing(final: Path, kind: OutputKind, overwrite: bool) -> bool:
    if final.is_dir() != kind.directory:
        found, wanted = ("a folder", "a file") if final.is_dir() else ("a file", "a folder")
        raise OutputRefusedError(
            f"Output {str(final)!r} is {found}, but a {kind.name} is {wanted}; keras-pvt does not "
            f"replace one with the other. Give a new path, e.g. "
            f"{str((final if final.is_dir() else final.parent) / kind.example)!r}."
        )
    if final.is_dir() and not any(final.iterdir()):  # an empty folder holds nothing
        return True
    if not kind.recognise(final):
        raise OutputRefusedError(
            f"Output {str(final)!r} exists and is not a previous {kind.name} (recognised by "
            f"{kind.proof}); keras-pvt never replaces it, even with --overwrite. Move it away or "
            "choose another path."
        )
    if not overwrite:
        raise OutputRefusedError(
            f"Output {str(final)!r} already holds a previous {kind.name}; pass --overwrite "
            "(overwrite=True in Python) to replace it, or choose another path."
        )
    return True


@contextlib.contextmanager
def staged_output(
    path: StrPath, kind: OutputKind, *, overwrite: bool = False, inputs: Iterable[StrPath | None] = ()
) -> Iterator[Path]:
    """Yield an empty staging path beside `path`; when the body succeeds, rename it into place.

    `check_output` runs before the body and again before the rename. On an error (or a refusal)
    the staging path is removed and whatever stood at `path` is untouched. A previous file is
    replaced with one atomic `os.replace`; a previous folder is renamed aside, the new one renamed
    in, then the old one removed.
    """
    inputs = list(inputs)
    final = Path(path)
    check_output(final, kind, overwrite=overwrite, inputs=inputs)
    stage = _reserve(final, kind.suffix, directory=kind.directory)
    try:
        yield stage
        replacing = check_output(final, kind, overwrite=overwrite, inputs=inputs)
        _commit(stage, final, kind, replacing)
    except BaseException:
        _remove(stage)
        raise


def atomic_write(
    path: StrPath,
    write: Callable[[Path], object],
    kind: OutputKind,
    *,
    overwrite: bool = False,
    inputs: Iterable[StrPath | None] = (),
) -> Path:
    """Call ``write(temporary_path)`` and atomically move the result to `path`; returns `path`.

    The temporary path is a sibling with `kind.suffix` (e.g. ``model.save`` can write a
    ``.keras`` there). `path` is replaced only if it is a previous output of `kind` and
    ``overwrite`` is True (see `check_output`); otherwise `OutputRefusedError`.
    """
    with staged_output(path, kind, overwrite=overwrite, inputs=inputs) as stage:
        write(stage)
    return Path(path)


@contextlib.contextmanager
def replacing(path: StrPath, suffix: str = "") -> Iterator[Path]:
    """Yield a staging path beside `path`, a file the caller owns (checked already) or a new one;
    when the body succeeds, flush it to disk and `os.replace` it over `path`, else remove it.

    `suffix` ends the staging name, for savers that check the extension (``".keras"``).
    """
    final = Path(path)
    stage = _reserve(final, suffix, directory=False)
    try:
        yield stage
        flush_to_disk(stage)
        os.replace(stage, final)
    except BaseException:
        _remove(stage)
        raise


@contextlib.contextmanager
def scratch_folder(beside: StrPath, suffix: str = ".work") -> Iterator[Path]:
    """A temporary folder next to `beside`, named like its staging paths, removed on exit.

    A process killed while using it leaves a folder that the next write to `beside` cleans up.
    """
    folder = _reserve(Path(beside), suffix, directory=True)
    try:
        yield folder
    finally:
        _remove(folder)


def clean_stale(final: StrPath) -> None:
    """Remove the staging siblings of `final` that a dead process left, restoring an aside folder.

    Only names of exactly our pattern whose PID no longer runs on this machine are touched: a
    previous output renamed aside (``.old``) is moved back when `final` is missing, else removed.
    """
    final = Path(final)
    pattern = _pattern(final.name)
    try:
        entries = list(final.parent.iterdir())
    except OSError:
        return
    leftovers = []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and int(match["pid"]) != os.getpid() and not _process_alive(int(match["pid"])):
            leftovers.append(entry)
    for entry in sorted(leftovers, key=lambda e: not e.name.endswith(_ASIDE)):  # asides first
        with contextlib.suppress(OSError):
            if entry.name.endswith(_ASIDE) and not os.path.lexists(final):
                os.rename(entry, final)
            else:
                _remove(entry)


def staging_name(final_name: str, suffix: str = "") -> str:
    """A fresh staging name for `final_name`: ``.NAME.partial-PID-TOKEN`` + `suffix`."""
    return f".{final_name}.partial-{os.getpid()}-{secrets.token_hex(4)}{suffix}"


def _pattern(final_name: str) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(final_name)}\.partial-(?P<pid>[0-9]+)-[0-9a-f]{{8}}(\.[A-Za-z0-9_.]+)?")


def _reserve(final: Path, suffix: str, *, directory: bool) -> Path:
    while True:
        stage = final.with_name(staging_name(final.name, suffix))
        try:
            if directory:
                stage.mkdir()
            else:
                os.close(os.open(stage, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return stage
        except FileExistsError:
            continue


def _commit(stage: Path, final: Path, kind: OutputKind, replacing: bool) -> None:
    flush_to_disk(stage)
    if not replacing:
        _publish_new(stage, final)
    elif kind.directory and any(final.iterdir()):
        aside = final.with_name(staging_name(final.name, _ASIDE))
        os.rename(final, aside)
        try:
            os.rename(stage, final)
        except BaseException:
            os.rename(aside, final)
            raise
        _remove(aside)
    else:
        os.replace(stage, final)  # a file, or an empty folder (rename fails if it filled up)


def _publish_new(stage: Path, final: Path) -> None:
    """Move `stage` to a `final` that did not exist, never clobbering one that appeared since."""
    if stage.is_dir():
        os.rename(stage, final)  # fails on a file or a non-empty folder that appeared meanwhile
        return
    try:
        os.link(stage, final)
    except FileExistsError as error:
        raise OutputRefusedError(
            f"Output {str(final)!r} appeared while writing; nothing was replaced. Run again."
        ) from error
    except OSError:  # a file system without hard links: the check just ran
        os.replace(stage, final)
        return
    stage.unlink()


def flush_to_disk(path: StrPath) -> None:
    """fsync a staged file (or every file of a staged folder): a power cut after the rename
    cannot leave a short file in place."""
    path = Path(path)
    for file in [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]:
        with file.open("rb") as handle:
            os.fsync(handle.fileno())


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs as another user
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        path.unlink()
