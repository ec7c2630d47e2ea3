"""The per-input-shape cache of built engines: bounded, least recently used dropped first, thread-safe."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

# Input shapes whose engine stays built at once: each LiteRT or OpenVINO shape holds its own copy of
# the (packed) weights and its activation buffers; a shape dropped converts again when it returns.
MAX_SHAPES = 8


class ShapeCache:
    """``shape -> built engine``, holding at most `max_shapes`; `get` builds a missing one once.

    Lookups take a short lock; building takes a second lock, so that a shape is never built twice
    when several threads meet it at once (builds run one at a time: each uses every core anyway).
    """

    def __init__(self, max_shapes: int = MAX_SHAPES) -> None:
        if max_shapes < 1:
            raise ValueError(f"`max_shapes` must be at least 1, got {max_shapes}.")
        self.max_shapes = max_shapes
        self._entries: collections.OrderedDict[tuple[int, ...], Any] = collections.OrderedDict()
        self._lookup = threading.Lock()
        self._build = threading.Lock()

    def _find(self, shape: tuple[int, ...]) -> Any | None:
        with self._lookup:
            entry = self._entries.get(shape)
            if entry is not None:
                self._entries.move_to_end(shape)
            return entry

    def get(self, shape: tuple[int, ...], build: Callable[[], Any]) -> Any:
        """The entry of `shape`, made with `build()` (and kept) if it is not cached."""
        entry = self._find(shape)
        if entry is not None:
            return entry
        with self._build:
            entry = self._find(shape)
            if entry is None:
                entry = build()
                with self._lookup:
                    self._entries[shape] = entry
                    while len(self._entries) > self.max_shapes:
                        self._entries.popitem(last=False)
        return entry

    def items(self) -> list[tuple[tuple[int, ...], Any]]:
        """The cached (shape, entry) pairs, least recently used first."""
        with self._lookup:
            return list(self._entries.items())
