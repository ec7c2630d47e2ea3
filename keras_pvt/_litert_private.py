"""The private LiteRT interpreter members keras-pvt relies on, each wrapped once here.

Checked against ai-edge-litert 2.3.0. LiteRT has no public op listing of an interpreter's graph:
`tf.lite.experimental.Analyzer` prints the file's ops as text whose format it says not to parse,
and before any delegate, so it cannot count XNNPACK's partitions; `CompiledModel` tells only
whether one accelerator runs everything. `tests/test_litert_private.py` holds this listing to both.
If an upgrade breaks this, this module is the only place to change.
"""

from __future__ import annotations

from typing import Any


def ops_details(interpreter: Any) -> list[dict[str, Any]]:
    """Every op of the interpreter's graph: name, inputs, outputs, result types
    (`Interpreter._get_ops_details`; delegated partitions appear as DELEGATE ops)."""
    return interpreter._get_ops_details()
