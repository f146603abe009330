"""The ``ctsnas`` command line.

Exit codes: 0 success, 2 bad input or any other user-facing error (one line naming the
option, the value and what is allowed; library errors name arguments, translated to options
by :func:`.common.flag_error`), 130 interrupted (Ctrl-C; prints how to resume). Tracebacks
only with the global ``--debug``.
"""
from __future__ import annotations

import argparse
import sys

from . import evaluate, forecast, search, serve, space, zeroshot
from .common import UsageError, flag_error


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2): the message and where to look, no usage block.
    Sub-command parsers inherit the class."""

    def error(self, message):
        self.exit(2, f"ctsnas: error: {message}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ctsnas", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true",
                        help="show Python tracebacks of errors (for bug reports)")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (space, evaluate, search, zeroshot, forecast, serve):
        module.add_parsers(sub)
    return parser


def resume_hint(args) -> str:
    """How to continue the interrupted command, or '' when there is nothing to resume."""
    run_dir = getattr(args, "run_dir", None)
    if args.command == "search" and run_dir:
        return f"; resume with: ctsnas search --resume --run-dir {run_dir}"
    if args.command == "seeds" and getattr(args, "seeds_command", None) == "generate":
        return f"; resume with: ctsnas seeds generate --resume --run-dir {run_dir}"
    return ""


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"\nctsnas: interrupted{resume_hint(args)}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return 0
    except Exception as exc:  # noqa: BLE001 - every user-facing error is one line
        if args.debug:
            raise
        print(f"ctsnas: error: {message(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) < 600 else text[:597] + "..."


def message(exc: Exception) -> str:
    """The one-line message of an error reaching the command line."""
    if isinstance(exc, UsageError):
        return _one_line(exc)
    if isinstance(exc, ValueError):
        return _one_line(flag_error(exc))
    if isinstance(exc, RecursionError):
        return "input nested too deeply (RecursionError); allowed: ordinary JSON specs"
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot access{where}: {exc.strerror or exc}"
    if isinstance(exc, MemoryError):
        return "out of memory; allowed: a smaller task, or --max-memory to refuse it earlier"
    return (f"{type(exc).__name__}: {_one_line(exc)} (unexpected; rerun with ctsnas --debug "
            "for the traceback and report it)")


if __name__ == "__main__":
    sys.exit(main())
