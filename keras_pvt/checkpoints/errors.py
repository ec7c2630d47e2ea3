"""The errors of loading weights: a file that cannot be read, tensors that do not fit the model, and
values that are not usable weights. Every format and every head raises these."""

from __future__ import annotations

REPORT_FIRST = 5  # keys listed per section of an error; the rest are counted


class CheckpointReadError(ValueError):
    """A checkpoint file that cannot be read: truncated, corrupt, or not the format its name says."""


class UnsafeCheckpointError(CheckpointReadError):
    """A pickled checkpoint asks for code (a global) other than tensor rebuilding and plain containers."""


class CheckpointMismatchError(ValueError):
    """The checkpoint's tensors do not fit the model: missing, unexpected or mis-shaped keys."""

    def __init__(
        self,
        missing: list[str],
        unexpected: list[str],
        mismatched: list[tuple[str, tuple, tuple]],
        hint: str = "",
    ) -> None:
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        lines = ["The checkpoint does not match the model."]
        if hint:
            lines.append(hint)
        lines += _section("missing from the checkpoint", missing)
        lines += _section("unexpected in the checkpoint", unexpected)
        lines += _section(
            "with the wrong shape (checkpoint vs model, PyTorch layout)",
            [f"{name}: {got} vs {want}" for name, got, want in mismatched],
        )
        super().__init__("\n".join(lines))

    def prefixed(self, prefix: str, hint: str) -> CheckpointMismatchError:
        """The same error with every key under `prefix` (a nested backbone's keys in its task's names)."""
        return CheckpointMismatchError(
            [prefix + key for key in self.missing],
            [prefix + key for key in self.unexpected],
            [(prefix + key, got, want) for key, got, want in self.mismatched],
            hint,
        )


class CheckpointValueError(ValueError):
    """Checkpoint tensors the model cannot take as weights: not floating point, or not finite."""

    def __init__(self, not_float: list[str], not_finite: list[str], source: str | None = None) -> None:
        self.not_float, self.not_finite, self.source = not_float, not_finite, source
        named = "The checkpoint" if source is None else f"The weights file {source!r}"
        lines = [f"{named} holds values that are not usable weights; nothing was loaded."]
        lines += _section("not floating point (dtype)", not_float)
        if not_float:
            lines.append(
                "  keras-pvt loads float weights only (float16/bfloat16/float32/float64); casting "
                "integers or booleans would silently give wrong weights. Dequantise a quantised "
                "checkpoint first (e.g. `q.astype(np.float32) * scale`) or use the float release."
            )
        lines += _section("with NaN or infinite values (counts)", not_finite)
        if not_finite:
            lines.append(
                "  The file is damaged or comes from a diverged run (or float64 values overflow "
                "float32); use another checkpoint."
            )
        super().__init__("\n".join(lines))


def _section(title: str, items: list[str]) -> list[str]:
    if not items:
        return []
    shown = [f"    {item}" for item in items[:REPORT_FIRST]]
    more = len(items) - REPORT_FIRST
    tail = [f"    ... and {more} more"] if more > 0 else []
    return [f"  {len(items)} key(s) {title}:", *shown, *tail]
