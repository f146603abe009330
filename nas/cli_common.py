"""Shared pieces of the ``ctsnas`` command line."""
from __future__ import annotations


class UsageError(ValueError):
    """Bad command-line input; printed as ``ctsnas: error: ...`` with exit code 2."""


def add_data_args(p) -> None:
    """``--data``, ``--data-dir``, ``--target`` and ``--univariate`` on parser ``p``."""
    p.add_argument("--data", required=True, help="dataset name (ctsnas datasets) or CSV path")
    p.add_argument("--data-dir", default=None, help="folder of the dataset files")
    p.add_argument("--target", default=None, help="forecast columns, comma-separated")
    p.add_argument("--univariate", action="store_true",
                   help="inputs = target columns only (default: all columns)")
