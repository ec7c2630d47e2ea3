"""The private LiteRT interpreter members keras-pvt relies on, each wrapped once here.

Checked against ai-edge-litert 2.3.0. LiteRT has no public op listing; if an upgrade breaks this,
this module is the only place to change.
"""

from __future__ import annotations

from typing import Any


def ops_details(interpreter: Any) -> list[dict[str, Any]]:
    """Every op of the interpreter's graph: name, inputs, outputs, result types
    (`Interpreter._get_ops_details`; delegated partitions appear as DELEGATE ops)."""
    return interpreter._get_ops_details()
