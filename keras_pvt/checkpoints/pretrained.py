"""Public ImageNet-1k PVT-v2 checkpoints: a cached, hash-checked fetch.

The files are timm's safetensors releases of the official weights (`timm/pvt_v2_<variant>.in1k` on
the Hugging Face Hub; URL and pinned hash in each `keras_pvt.presets.VARIANTS` record), so no torch
is needed to convert them. They are fetched once with `keras.utils.get_file` into
``$KERAS_HOME/keras_pvt`` (default ``~/.keras/keras_pvt``; the ``KERAS_PVT_CACHE_DIR`` environment
variable replaces ``$KERAS_HOME``), verified against the pinned hash, and converted each time a
model is built. Offline, `fetch` fails within `timeout` seconds with a
`PretrainedWeightsUnavailableError` telling how to use a local file; with ``KERAS_PVT_OFFLINE=1``
it never touches the network and only uses the cache. A cached file that fails the hash check is
never deleted (the user may have put it there): offline it is reported with both hashes; online it
is renamed to ``NAME.<sha256[:12]>.corrupt`` and downloaded again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path

import keras

from keras_pvt.presets import VARIANTS, PretrainedCheckpoint

CACHE_SUBDIR = "keras_pvt"
DEFAULT_TIMEOUT_S = 15.0
OFFLINE_ENV = "KERAS_PVT_OFFLINE"
CACHE_ENV = "KERAS_PVT_CACHE_DIR"

# Variant name -> its ImageNet-1k checkpoint: the `imagenet` field of each `keras_pvt.presets.VARIANTS`
# record. `fetch` looks entries up here, so a test can point one at a local server.
IMAGENET: dict[str, PretrainedCheckpoint] = {name: variant.imagenet for name, variant in VARIANTS.items()}


class PretrainedWeightsUnavailableError(OSError):
    """The ImageNet checkpoint is neither cached nor downloadable right now."""


def cache_path(variant: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the checkpoint of `variant` is (or will be) cached."""
    return _cache_root(cache_dir) / CACHE_SUBDIR / IMAGENET[variant].fname


def _cache_root(cache_dir: str | os.PathLike | None) -> Path:
    keras_home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    root = cache_dir or os.environ.get(CACHE_ENV) or keras_home
    return Path(os.path.expanduser(root))


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """`urllib` has no timeout by default: a dead network could hang for minutes."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def fetch(
    variant: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Local path of the ImageNet-1k checkpoint of `variant`, downloading it once if needed."""
    if variant not in IMAGENET:
        raise ValueError(f"No ImageNet weights for variant {variant!r}; available: {sorted(IMAGENET)}.")
    entry = IMAGENET[variant]
    target = cache_path(variant, cache_dir)
    offline = os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0")
    note = ""
    if target.is_file():
        found = sha256_of(target) if entry.sha256 is not None else None
        if found == entry.sha256:
            return target
        mismatch = (
            f"The cached ImageNet checkpoint of pvt_v2_{variant} at {target} has sha256 {found}, "
            f"not the pinned {entry.sha256}: it is truncated, corrupt or another file."
        )
        if offline:
            raise PretrainedWeightsUnavailableError(
                f"{mismatch} {OFFLINE_ENV} is set, so it was left in place and not downloaded again. "
                f"Replace it with a good copy of {entry.url}, or move it away and download again "
                "with network access, or pass a checkpoint you trust as `weights=PATH`."
            )
        aside = _set_aside(target, found)
        note = f" {mismatch} It was moved to {aside}."
        warnings.warn(f"{mismatch} Moved it to {aside}; downloading the checkpoint again.", stacklevel=2)
    elif offline:
        raise PretrainedWeightsUnavailableError(_offline_help(variant, target, f"{OFFLINE_ENV} is set"))
    # get_file silently falls back to /tmp/.keras when the cache folder does not exist yet.
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _socket_timeout(timeout):
            path = keras.utils.get_file(
                fname=entry.fname,
                origin=entry.url,
                file_hash=entry.sha256,
                hash_algorithm="sha256",
                cache_subdir=CACHE_SUBDIR,
                cache_dir=os.fspath(_cache_root(cache_dir)),
            )
    except ValueError as error:  # get_file: downloaded but the hash does not match
        target.unlink(missing_ok=True)  # never leave a file that fails verification in the cache
        raise PretrainedWeightsUnavailableError(
            f"The downloaded ImageNet checkpoint for pvt_v2_{variant} does not match its pinned "
            f"sha256 {entry.sha256} ({error}). The download was corrupted or the file changed "
            f"upstream; retry, or pass a checkpoint you trust as `weights=PATH`."
        ) from error
    except Exception as error:  # get_file wraps URL errors in a bare Exception
        raise PretrainedWeightsUnavailableError(_offline_help(variant, target, str(error)) + note) from error
    if entry.sha256 is None:
        warnings.warn(
            f"keras-pvt has no pinned sha256 for the pvt_v2_{variant} ImageNet checkpoint; the file "
            f"at {path} has sha256 {sha256_of(path)}. Compare it with the Git LFS id shown at "
            f"{entry.url.replace('/resolve/', '/blob/')}.",
            stacklevel=2,
        )
    return Path(path)


def _set_aside(target: Path, found: str) -> Path:
    """Rename a cached file that fails its hash check to ``NAME.<sha256[:12]>.corrupt``.

    It is never deleted: the user may have copied it there (the offline help suggests it). A file
    already standing under that name has the same hash prefix, hence the same bytes.
    """
    aside = target.with_name(f"{target.name}.{found[:12]}.corrupt")
    os.replace(target, aside)
    return aside


def _offline_help(variant: str, target: Path, reason: str) -> str:
    entry = IMAGENET[variant]
    pinned = f" (sha256 {entry.sha256})" if entry.sha256 else ""
    return (
        f"Could not get the ImageNet weights of pvt_v2_{variant}: {reason}. To load them without "
        f"network access, download {entry.url}{pinned} on a connected machine, then either pass "
        f"the file as `weights='/path/to/model.safetensors'` (the official `.pth` release and "
        f"Keras `.weights.h5` files work too) or copy it to {target}. Use `weights=None` for "
        f"random initialisation."
    )
