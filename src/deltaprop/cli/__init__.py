"""The ``deltaprop`` command: train, evaluate, predict, gradcheck, info, explain, export.

Each subcommand lives in its own module with ``add_parser(subparsers)`` and
``run(args) -> int``. deltaprop's own errors become one line on stderr and exit
code 2 (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import warnings

from ..distributed import communicator, launched_ranks
from ..errors import DeltapropError, DeltapropWarning
from ..version import __version__
from . import evaluate, explain, export, inspect, train

COMMANDS = [train, evaluate, inspect, explain, export]  # each adds its subcommands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deltaprop", allow_abbrev=False,
        description="Train fully-connected networks by the backpropagation of the notes.",
        epilog="Run 'deltaprop COMMAND --help' for the options of one command.")
    parser.add_argument("--version", action="version", version=f"deltaprop {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    # --debug after the subcommand too (there its default is left out, so it never resets one given before)
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error")
    # no abbreviations: "--output m.safetensors" must not quietly become --output-activation
    # typeshed asks parser_class for a class; a partial of ArgumentParser makes the same parsers
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,  # type: ignore[call-overload]
                                parser_class=functools.partial(argparse.ArgumentParser, allow_abbrev=False,
                                                               parents=[debug]))
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line: deltaprop's own are hints ("deltaprop: hint: ..."), others keep their type."""
    kind = "hint" if issubclass(category, DeltapropWarning) else f"warning ({category.__name__})"
    print(f"deltaprop: {kind}: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _show_warning
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # under mpiexec, the ranks that did start would wait for this one for ever
        if exc.code and launched_ranks() > 1:
            communicator().end_job(exc)
        raise
    try:
        return args.run(args)
    except BrokenPipeError:  # output piped into head or similar: not an error (before OSError, its parent)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush is quiet too
        return 0
    except (DeltapropError, OSError) as exc:  # bad input, or a path that cannot be read or written
        if args.debug:
            raise
        print(f"deltaprop {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deltaprop: interrupted", file=sys.stderr)
        return 130


