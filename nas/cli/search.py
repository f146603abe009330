"""``ctsnas search`` and ``ctsnas runs``: run a search and read its run store."""
from __future__ import annotations

import argparse
import json
import sys

from .common import UsageError, flag_error, parse_horizons, read_specs


def _trials(args):
    """``--trials``, or the deprecated ``--budget`` (with a note on stderr)."""
    if args.budget is None:
        return args.trials
    print("ctsnas: note: --budget is deprecated; use --trials", file=sys.stderr)
    if args.trials is not None and args.trials != args.budget:
        raise UsageError(f"--budget: got {args.budget} next to --trials {args.trials}; "
                         "allowed: only --trials (--budget is its deprecated name)")
    return args.budget


def cmd_search(args) -> int:
    from ..engine.runner import search
    from .report import format_leaderboard

    given = {"data": args.data, "data_dir": args.data_dir, "target": args.target,
             "univariate": args.univariate or None, "trials": _trials(args),
             "profile": args.profile, "seed": args.seed, "workers": args.workers,
             "cpus_per_trial": args.cpus_per_trial, "trial_timeout": args.trial_timeout,
             "address": args.address,
             "horizons": parse_horizons(args.horizons) if args.horizons else None,
             "extra_specs": read_specs(args.spec, "--spec") if args.spec else None}
    given = {k: v for k, v in given.items() if v is not None}
    try:
        summary = search(given, args.run_dir, resume=args.resume, progress=not args.quiet)
    except ValueError as exc:
        raise flag_error(exc) from None
    print(json.dumps(summary, indent=2, default=str) if args.json else format_leaderboard(summary))
    return 0


def cmd_runs(args) -> int:
    from pathlib import Path

    from ..engine.results import export, leaderboard, trials_frame
    from .report import format_leaderboard

    if args.runs_command == "list":
        root = Path(args.root)
        for db in sorted(root.glob("*/run.sqlite")):
            frame = trials_frame(db.parent)
            ok = frame[frame["status"] == "ok"] if len(frame) else frame
            best = f"{ok['val_mse'].min():.4f}" if len(ok) else "-"
            print(f"{db.parent}  trials {len(frame)}  failed {len(frame) - len(ok)}  best {best}")
        return 0
    try:
        if args.runs_command == "export":
            print(export(args.dir, args.format, args.out))
            return 0
        frame = trials_frame(args.dir)
    except ValueError as exc:
        raise flag_error(exc, {"run_dir": "DIR"}) from None
    from ..engine.store import RunStore
    store = RunStore(args.dir)
    config, rows = store.get_config(), store.trials()
    store.close()
    summary = {"run_dir": args.dir, "config": config, "n_trials": len(frame),
               "n_failed": int((frame["status"] != "ok").sum()) if len(frame) else 0,
               "references": _json_file(Path(args.dir) / "references.json") or {},
               "leaderboard": leaderboard(rows)}
    best_test = _json_file(Path(args.dir) / "best_test.json")
    if best_test:
        summary["best_test"] = best_test
    print(format_leaderboard(summary, top=args.top))
    return 0


def _json_file(path):
    return json.loads(path.read_text()) if path.is_file() else None



def add_parsers(sub) -> None:
    """Add the search and runs sub-commands to ``sub``."""
    p = sub.add_parser("search", help="search the space on a dataset (local Ray or a cluster)")
    p.add_argument("--data", default=None, help="dataset name (ctsnas datasets) or CSV path")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--target", default=None)
    p.add_argument("--univariate", action="store_true")
    p.add_argument("--horizons", default=None, help="comma-separated H (default 24,48)")
    p.add_argument("--trials", type=int, default=None, help="number of trials to run")
    p.add_argument("--budget", type=int, default=None, help=argparse.SUPPRESS)  # deprecated
    p.add_argument("--profile", default=None,
                   help="training length: smoke, screen, small (default) or paper")
    p.add_argument("--workers", type=int, default=None, help="parallel trials (local Ray)")
    p.add_argument("--cpus-per-trial", type=int, default=None)
    p.add_argument("--trial-timeout", type=float, default=None, help="seconds per trial")
    p.add_argument("--address", default=None, help="join a Ray cluster: auto or host:port")
    p.add_argument("--spec", default=None,
                   help="JSON (lines) file of specs to evaluate first, after the ts2vec reference")
    p.add_argument("--run-dir", default="runs/latest")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)


    runs = sub.add_parser("runs", help="list, show and export runs").add_subparsers(
        dest="runs_command", required=True)
    p = runs.add_parser("list")
    p.add_argument("--root", default="runs")
    p.set_defaults(func=cmd_runs)
    p = runs.add_parser("show")
    p.add_argument("dir")
    p.add_argument("--top", type=int, default=10)
    p.set_defaults(func=cmd_runs)
    p = runs.add_parser("export")
    p.add_argument("dir")
    p.add_argument("--format", default="csv", help="csv, parquet or jsonl")
    p.add_argument("--out", default=None)
    p.set_defaults(func=cmd_runs)
