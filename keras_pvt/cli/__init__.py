"""`keras-pvt` console command: one module of this package per subcommand, each defining
``register(subparsers)`` that adds its flags (their defaults come from the library's options).

Only the module of the command being run is imported, so `keras-pvt variants` or `convert` never
loads TensorFlow; a command that needs TensorFlow says so in one line where it is missing. A new
subcommand is a module here and a line in `COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from keras_pvt._requires import tensorflow_problem

# Subcommand (= module name) -> whether it needs TensorFlow (as Keras' backend).
COMMANDS = {"convert": False, "demo": True, "export": True, "train": True, "variants": False}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or with `command`, of that one only (the others are bare names).

    TensorFlow commands that cannot run here are listed with the reason instead of their flags.
    """
    parser = argparse.ArgumentParser(
        prog="keras-pvt", description="PVT-v2 for Keras 3: build, convert, train, export."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name, needs_tensorflow in COMMANDS.items():
        if command is not None and name != command:
            subparsers.add_parser(name, add_help=False)
            continue
        problem = tensorflow_problem(f"keras-pvt {name}", backend=True) if needs_tensorflow else None
        if problem is not None:
            subparsers.add_parser(name, help=f"(unavailable: {problem})")
            continue
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `keras-pvt` console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    if command is not None and COMMANDS[command]:
        problem = tensorflow_problem(f"keras-pvt {command}", backend=True)
        if problem is not None:
            print(f"keras-pvt {command}: error: {problem}", file=sys.stderr)
            return 2
    args = build_parser(command).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, NotImplementedError, OSError) as error:
        print(f"keras-pvt {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
