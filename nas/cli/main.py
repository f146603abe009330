"""The ``ctsnas`` command line.

Exit codes: 0 success, 2 bad input (the message names the option, the value and what is
allowed; library errors name arguments, translated to options by :func:`.common.flag_error`).
"""
from __future__ import annotations

import argparse
import sys

from . import evaluate, search, space, zeroshot
from .common import UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctsnas", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (space, evaluate, search, zeroshot):
        module.add_parsers(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"ctsnas: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
