"""Shared pieces of the ``ctsnas`` command line."""
from __future__ import annotations

import json


class UsageError(ValueError):
    """Bad command-line input; printed as ``ctsnas: error: ...`` with exit code 2."""


def add_data_args(p) -> None:
    """``--data``, ``--data-dir``, ``--target`` and ``--univariate`` on parser ``p``."""
    p.add_argument("--data", required=True, help="dataset name (ctsnas datasets) or CSV path")
    p.add_argument("--data-dir", default=None, help="folder of the dataset files")
    p.add_argument("--target", default=None, help="forecast columns, comma-separated")
    p.add_argument("--univariate", action="store_true",
                   help="inputs = target columns only (default: all columns)")


def read_specs(path: str, option: str = "FILE") -> list:
    """Specs from a file holding one JSON object or JSON lines (one spec per line)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{option}: cannot read {path!r}: {exc}") from None
    try:
        return [json.loads(text)]
    except json.JSONDecodeError:
        pass
    specs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            specs.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{number}: not JSON ({exc.msg}); allowed: one JSON spec "
                             "or one spec per line") from None
    if not specs:
        raise UsageError(f"{option}: {path!r} holds no spec")
    return specs


def parse_horizons(text: str) -> list:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--horizons: got {text!r}; allowed: comma-separated positive ints, "
                         "e.g. 24,48") from None
    if not values or min(values) < 1:
        raise UsageError(f"--horizons: got {text!r}; allowed: comma-separated positive ints")
    return values
