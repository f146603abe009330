"""``ctsnas search`` and ``ctsnas runs``: run a search and read its run store."""
from __future__ import annotations

import argparse
import json
import sys

from .common import (
    FLAGS,
    UsageError,
    add_date_args,
    add_memory_arg,
    date_options,
    finite_seconds,
    flag_error,
    max_memory,
    parse_horizons,
    read_specs,
)


def _trials(args):
    """``--trials``, or the deprecated ``--budget`` (with a note on stderr)."""
    if args.budget is None:
        return args.trials
    print("ctsnas: note: --budget is deprecated; use --trials", file=sys.stderr)
    if args.trials is not None and args.trials != args.budget:
        raise UsageError(f"--budget: got {args.budget} next to --trials {args.trials}; "
                         "allowed: only --trials (--budget is its deprecated name)")
    return args.budget


def parse_rungs(text: str) -> list:
    """``--rungs``: comma-separated training iteration counts (the library checks that they
    increase)."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--rungs: got {text!r}; allowed: comma-separated increasing "
                         "iteration counts, e.g. 25,75,200") from None


def cmd_search(args) -> int:
    from ..engine.runner import search
    from ..zeroshot.guidance import strategy_inputs
    from .report import format_leaderboard

    given = {"data": args.data, "data_dir": args.data_dir, "target": args.target,
             "univariate": args.univariate or None, "trials": _trials(args),
             "profile": args.profile, "seed": args.seed, "workers": args.workers,
             "cpus_per_trial": args.cpus_per_trial, "trial_timeout": args.trial_timeout,
             "address": args.address,
             "horizons": parse_horizons(args.horizons) if args.horizons else None,
             "extra_specs": read_specs(args.spec, "--spec") if args.spec else None,
             "strategy": args.strategy, "population": args.population,
             "sample_size": args.sample_size, "features": args.features,
             "downstream": args.downstream,
             "fidelity": args.fidelity, "eta": args.eta, "time_budget": args.time_budget,
             "rungs": parse_rungs(args.rungs) if args.rungs else None, **date_options(args),
             "max_memory": max_memory(args.max_memory) if args.max_memory else None}
    given = {k: v for k, v in given.items() if v is not None}
    try:
        summary = search(given, args.run_dir, resume=args.resume, progress=not args.quiet,
                         guidance=strategy_inputs, wait_lock=args.wait_lock or 0)
    except ValueError as exc:
        raise flag_error(exc, FLAGS) from None
    print(json.dumps(summary, indent=2, default=str) if args.json else format_leaderboard(summary))
    return 0


def cmd_runs(args) -> int:
    from ..engine.results import export, run_summary

    if args.runs_command == "list":
        return _runs_list(args.root)
    try:
        if args.runs_command == "export":
            print(export(args.dir, args.format, args.out))
            return 0
        summary = run_summary(args.dir)
    except ValueError as exc:
        raise flag_error(exc, {"run_dir": "DIR", "out": "--out", "fmt": "--format"}) from None
    from .report import format_leaderboard
    print(json.dumps(summary, indent=2, default=str) if args.json
          else format_leaderboard(summary, top=args.top))
    return 0


def _runs_list(root) -> int:
    """One line per run under ``root``; a corrupt or unreadable run is listed as such."""
    from pathlib import Path

    from ..engine.results import trials_frame

    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"--root: {root} is not a folder; allowed: a folder of run "
                         "directories (default runs)")
    for db in sorted(root.glob("*/run.sqlite")):
        try:
            frame = trials_frame(db.parent)
        except ValueError as exc:
            print(f"{db.parent}  unreadable: {' '.join(str(exc).split())[:300]}")
            continue
        ok = frame[frame["status"] == "ok"] if len(frame) else frame
        best = f"{ok['val_mse'].min():.4f}" if len(ok) else "-"
        print(f"{db.parent}  trials {len(frame)}  failed {len(frame) - len(ok)}  best {best}")
    return 0


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
    p.add_argument("--trial-timeout", type=finite_seconds, default=None,
                   help="seconds per trial")
    p.add_argument("--address", default=None, help="join a Ray cluster: auto or host:port")
    add_date_args(p)
    add_memory_arg(p)
    p.add_argument("--wait-lock", type=finite_seconds, default=None, metavar="SECONDS",
                   help="wait up to SECONDS for another search holding --run-dir (default: "
                        "refuse at once)")
    p.add_argument("--spec", default=None,
                   help="JSON (lines) file of specs to evaluate first, after the ts2vec reference")
    p.add_argument("--run-dir", default="runs/latest")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--strategy", default=None,
                   help="random (default), evolution, tpe or guided (evolution with "
                        "comparator-ranked mutations)")
    p.add_argument("--population", type=int, default=None,
                   help="evolution/guided: population size P (default 16)")
    p.add_argument("--sample-size", type=int, default=None,
                   help="evolution/guided: tournament sample size S (default 4)")
    p.add_argument("--features", default=None,
                   help="probe features: repr (default, TS2Vec protocol) or repr+raw (the "
                        "representation next to the raw lookback window, one Ridge)")
    p.add_argument("--downstream", default=None,
                   help="objective: probe (default; Ridge forecasting probe, TS2Vec protocol) "
                        "fsnet (FSNet's cumulative online MSE over the validation split "
                        "after warm-up on train, the encoder as its pretrained backbone) or "
                        "titans (mode-A validation MSE of Titans reading the frozen encoder's "
                        "causal representations, lookback 96)")
    p.add_argument("--fidelity", default=None,
                   help="none (default: every trial at --profile) or asha (asynchronous "
                        "successive halving over training iterations, see --rungs, --eta)")
    p.add_argument("--rungs", default=None,
                   help="asha: training iterations per rung (default 25,75,200; the "
                        "profile's crop length and time cap apply)")
    p.add_argument("--eta", type=int, default=None,
                   help="asha: reduction factor (default 3: the top third of a rung is "
                        "promoted)")
    p.add_argument("--time-budget", type=finite_seconds, default=None, metavar="SECONDS",
                   help="stop asking new trials once the trials' seconds / workers reach "
                        "SECONDS (trials in flight finish)")
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
    p.add_argument("--json", action="store_true", help="the whole summary as JSON")
    p.set_defaults(func=cmd_runs)
    p = runs.add_parser("export")
    p.add_argument("dir")
    p.add_argument("--format", default="csv", help="csv, parquet or jsonl")
    p.add_argument("--out", default=None)
    p.set_defaults(func=cmd_runs)
