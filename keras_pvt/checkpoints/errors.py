"""Errors raised while reading checkpoint files (shared by the format readers)."""

from __future__ import annotations


class CheckpointReadError(ValueError):
    """A checkpoint file that cannot be read: truncated, corrupt, or not the format its name says."""


class UnsafeCheckpointError(CheckpointReadError):
    """A pickled checkpoint asks for code (a global) other than tensor rebuilding and plain containers."""
