"""Shared pieces of the ``ctsnas`` command line."""
from __future__ import annotations

import argparse
import json
import math
import re


class UsageError(ValueError):
    """Bad command-line input; printed as ``ctsnas: error: ...`` with exit code 2."""


#: Library argument / config key -> the ``ctsnas`` option that sets it. Library errors name the
#: argument (``trials: got 0; ...``, ``... (resume=True)``); the CLI shows the option.
FLAGS = {name: "--" + name.replace("_", "-") for name in (
    "data", "data_dir", "target", "univariate", "horizons", "horizon", "trials", "profile",
    "seed", "workers", "cpus_per_trial", "trial_timeout", "address", "run_dir", "resume",
    "per_task", "shared", "probe_stride", "max_cost", "noise_specs", "skip_exported", "merge",
    "samples", "top", "train_top", "anchor_share", "compare_ts2vec", "weights", "records",
    "epochs", "members", "out", "arch", "encoder", "sort_dates", "dedupe", "date_format",
    "max_memory", "wait_lock", "strategy", "population", "sample_size", "features",
    "fidelity", "rungs", "eta", "time_budget", "downstream")}
FLAGS.update({"extra_specs": "--spec", "slices": "--suite", "weights_dir": "--weights",
              "out_dir": "--out", "fmt": "--format", "max_bytes": "--max-memory"})


def flag_error(exc: ValueError, flags: dict | None = None) -> UsageError:
    """``exc`` as a :class:`UsageError` naming options instead of arguments: the leading
    ``name:`` (or ``name.key:``) and every ``name=value`` hint whose name is in ``flags`` (default :data:`FLAGS`)
    become ``--name:`` and ``--name value`` (``--name`` for ``=True``)."""
    flags = FLAGS if flags is None else flags
    text = str(exc)
    head = re.match(r"([a-z_]+)[.:]", text)
    if head and head.group(1) in flags:
        text = flags[head.group(1)] + text[head.end(1):]

    def hint(m):
        flag = flags.get(m.group(1))
        if flag is None:
            return m.group(0)
        return flag if m.group(2) == "True" else f"{flag} {m.group(2)}"

    return UsageError(re.sub(r"\b([a-z_]+)=([^\s;,)]+)", hint, text))


def add_data_args(p) -> None:
    """``--data``, ``--data-dir``, ``--target`` and ``--univariate`` on parser ``p``."""
    p.add_argument("--data", required=True, help="dataset name (ctsnas datasets) or CSV path")
    p.add_argument("--data-dir", default=None, help="folder of the dataset files")
    p.add_argument("--target", default=None, help="forecast columns, comma-separated")
    p.add_argument("--univariate", action="store_true",
                   help="inputs = target columns only (default: all columns)")
    add_date_args(p)


def add_date_args(p) -> None:
    """``--sort-dates``, ``--dedupe`` and ``--date-format`` (see :func:`downstream.load`)."""
    p.add_argument("--sort-dates", action="store_true",
                   help="sort rows by date instead of refusing unsorted dates")
    p.add_argument("--dedupe", action="store_true",
                   help="drop rows repeating an earlier date instead of refusing them")
    p.add_argument("--date-format", default=None, metavar="FMT",
                   help="strftime format of the date column, e.g. '%%d/%%m/%%Y %%H:%%M' "
                        "(needed when day-first and month-first both fit)")


def date_options(args) -> dict:
    """The data-loading options the user set (``sort_dates``, ``dedupe``, ``date_format``)."""
    out = {"sort_dates": args.sort_dates, "dedupe": args.dedupe,
           "date_format": args.date_format}
    return {k: v for k, v in out.items() if v}


def add_memory_arg(p) -> None:
    """``--max-memory`` on parser ``p`` (bytes or with a unit; parsed by :func:`max_memory`)."""
    p.add_argument("--max-memory", default=None, metavar="SIZE",
                   help="refuse work estimated to need more memory, e.g. 8G (default: 60%% "
                        "of this machine's RAM)")


def max_memory(text) -> int:
    """``--max-memory`` in bytes (default: a share of the machine's RAM)."""
    from ..engine.memory import default_max_bytes, parse_bytes

    if text is None:
        return default_max_bytes()
    try:
        return parse_bytes(text, "max_memory")
    except ValueError as exc:
        raise flag_error(exc) from None


def finite_seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0 (``nan`` and ``inf`` refused)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: a finite number of "
                                         "seconds > 0")
    return value


def read_specs(path: str, option: str = "FILE") -> list:
    """Specs from a file holding one JSON object or JSON lines (one spec per line)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{option}: cannot read {path!r}: {exc}") from None
    try:
        return [json.loads(text)]
    except RecursionError:
        raise UsageError(f"{option}: {path!r} is nested too deeply; allowed: a JSON spec "
                         "(ctsnas space show ts2vec)") from None
    except ValueError:  # JSONDecodeError, or an integer of more than 4300 digits
        pass
    specs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            specs.append(json.loads(line))
        except (ValueError, RecursionError) as exc:
            why = getattr(exc, "msg", None) or ("nested too deeply" if isinstance(
                exc, RecursionError) else str(exc).split(";")[0][:120])
            raise UsageError(f"{path}:{number}: not a JSON spec ({why}); allowed: one JSON "
                             "spec or one spec per line") from None
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
