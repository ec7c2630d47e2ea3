"""Exceptions of the export package (subclasses of `ValueError`, so the CLI reports them cleanly)."""

from __future__ import annotations


class ExportError(ValueError):
    """An export or conversion could not be done; the message names the cause and the fix."""


class UnsupportedOpsError(ExportError):
    """A builtin-only TFLite conversion met TensorFlow ops that have no TFLite builtin kernel."""

    def __init__(self, ops: list[str], message: str) -> None:
        super().__init__(message)
        self.ops = ops


class VerificationError(ExportError):
    """The exported file ran but disagreed with the Keras model (or produced NaN/Inf)."""

    def __init__(self, report: object, message: str) -> None:
        super().__init__(message)
        self.report = report
