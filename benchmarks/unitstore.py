"""The result file of a resumable benchmark: ``{"units": {key: row}, ...}`` as JSON, each unit
written atomically under a file lock as soon as it is done, so shards can share one file."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from filelock import FileLock

from nas.engine.results import write_json


def load(path: Path) -> dict:
    """The results so far (``{"units": {}}`` when the file is absent)."""
    return json.loads(Path(path).read_text()) if Path(path).exists() else {"units": {}}


def record(path: Path, key: str, row: dict) -> None:
    """Store ``row`` as unit ``key``, re-reading the file under its lock first."""
    with FileLock(str(path) + ".lock"):
        results = load(path)
        results["units"][key] = row
        write_json(results, path)


def arguments(doc: str, default_out: Path) -> argparse.Namespace:
    """The common command line of a unit benchmark: ``--out``, ``--shard i/n``, ``--only``,
    ``--report``, ``--dry-run``; sets torch's threads from ``CTSNAS_BENCH_THREADS`` (default 1)
    and creates the output's folder."""
    import torch

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", default=str(default_out))
    parser.add_argument("--shard", default="1/1", help="i/n: run every n-th unit from the i-th")
    parser.add_argument("--only", default=None, help="comma-separated unit keys")
    parser.add_argument("--report", action="store_true", help="tables only")
    parser.add_argument("--dry-run", action="store_true", help="a short run on co2")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("CTSNAS_BENCH_THREADS", "1")))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    return args


def run_pending(args: argparse.Namespace, units: list, key, run) -> Path:
    """Run ``run(unit)`` for this shard's units (``--only`` kept) not yet in ``--out``; the
    units finished by another process meanwhile are re-read before each one. Returns the path."""
    path = Path(args.out)
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - {key(u) for u in units})
        if unknown:
            raise SystemExit(f"--only: unknown unit keys {unknown}; allowed: "
                             f"{[key(u) for u in units]}")
        units = [u for u in units if key(u) in wanted]
    if not args.report:
        i, n = (int(v) for v in args.shard.split("/"))
        for unit in units[i - 1::n]:
            if key(unit) not in load(path)["units"]:
                run(unit)
    return path


def write_report(path: Path, text: str) -> None:
    """Print the report and write it next to the JSON as ``.md``."""
    print(text)
    path.with_suffix(".md").write_text(text.strip() + "\n")
