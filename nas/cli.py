"""The ``ctsnas`` command line.

Exit codes: 0 success, 2 bad input (the message names the field, the value and what is allowed).
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

import search_spaces as ss

from .cli_common import UsageError
from .cli_common import add_data_args as _add_data_args
from .cli_zeroshot import add_zeroshot_parsers


def _read_specs(path: str, option: str = "FILE") -> list:
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


def cmd_space_sample(args) -> int:
    if args.n < 1:
        raise UsageError(f"--n: got {args.n}; allowed: an int >= 1")
    rng = np.random.default_rng(args.seed)
    for _ in range(args.n):
        print(json.dumps(ss.sample(rng, spatial=not args.no_spatial)))
    return 0


def cmd_space_validate(args) -> int:
    specs = _read_specs(args.file)
    for i, spec in enumerate(specs):
        try:
            ss.validate(spec)
        except ValueError as exc:
            where = f" (spec {i + 1} of {len(specs)})" if len(specs) > 1 else ""
            raise UsageError(f"{args.file}{where}: {exc}") from None
    for spec in specs:
        print(f"ok {ss.spec_hash(spec)}")
    return 0


def cmd_space_show(args) -> int:
    try:
        print(json.dumps(ss.canonical(ss.preset(args.name)), indent=2))
    except ValueError as exc:
        raise UsageError(f"NAME: {exc}") from None
    return 0


def cmd_space_size(args) -> int:
    n = ss.space_size(spatial=not args.no_spatial)
    print(f"{n} distinct specs ({n:.3e})")
    return 0


def _horizons(text: str) -> list:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--horizons: got {text!r}; allowed: comma-separated positive ints, "
                         "e.g. 24,48") from None
    if not values or min(values) < 1:
        raise UsageError(f"--horizons: got {text!r}; allowed: comma-separated positive ints")
    return values


def cmd_datasets(args) -> int:
    from downstream.datasets import candidate_dirs, list_datasets

    looked = ", ".join(str(d.resolve()) for d in candidate_dirs(args.data_dir))
    print(f"data directory (--data-dir, else $CTSNAS_DATA_DIR, else ./datasets, "
          f"../shared/datasets): looked in {looked}")
    for row in list_datasets(args.data_dir):
        mark = "yes" if row["available"] else "missing"
        print(f"  {row['name']:<14} {mark:<8} {row['path']}")
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate
    from .report import format_evaluation

    horizons = _horizons(args.horizons)
    try:
        result = evaluate(args.data, args.arch, args.profile, horizons, args.target,
                          args.univariate, args.data_dir, args.seed,
                          references=not args.no_references)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(json.dumps(result, indent=2) if args.json else format_evaluation(result))
    return 0


def cmd_search(args) -> int:
    from .report import format_leaderboard
    from .runner import search

    given = {"data": args.data, "data_dir": args.data_dir, "target": args.target,
             "univariate": args.univariate or None, "budget": args.budget,
             "profile": args.profile, "seed": args.seed, "workers": args.workers,
             "cpus_per_trial": args.cpus_per_trial, "trial_timeout": args.trial_timeout,
             "address": args.address,
             "horizons": _horizons(args.horizons) if args.horizons else None,
             "extra_specs": _read_specs(args.spec, "--spec") if args.spec else None}
    given = {k: v for k, v in given.items() if v is not None}
    try:
        summary = search(given, args.run_dir, resume=args.resume, progress=not args.quiet)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(json.dumps(summary, indent=2, default=str) if args.json else format_leaderboard(summary))
    return 0


def cmd_runs(args) -> int:
    from pathlib import Path

    from .report import format_leaderboard
    from .results import export, leaderboard, trials_frame

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
        raise UsageError(str(exc)) from None
    from .store import RunStore
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctsnas", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    space = sub.add_parser("space", help="inspect the search space").add_subparsers(
        dest="space_command", required=True)
    p = space.add_parser("sample", help="print N random specs as JSON lines")
    p.add_argument("--n", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-spatial", action="store_true", help="only temporal encoder ops")
    p.set_defaults(func=cmd_space_sample)
    p = space.add_parser("validate", help="validate a spec file (JSON or JSON lines)")
    p.add_argument("file")
    p.set_defaults(func=cmd_space_validate)
    p = space.add_parser("show", help=f"print a preset spec ({', '.join(ss.PRESETS)})")
    p.add_argument("name")
    p.set_defaults(func=cmd_space_show)
    p = space.add_parser("size", help="number of distinct specs in the space")
    p.add_argument("--no-spatial", action="store_true")
    p.set_defaults(func=cmd_space_size)

    p = sub.add_parser("datasets", help="list the datasets and where they were looked for")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("evaluate", help="train one spec and print validation and test metrics")
    _add_data_args(p)
    p.add_argument("--arch", default="ts2vec", help="preset name or spec JSON file")
    p.add_argument("--profile", default="small", help="smoke, small or paper")
    p.add_argument("--horizons", default="24,48", help="comma-separated H, e.g. 24,48,168")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-references", action="store_true",
                   help="skip the raw-lookback and random-encoder rows")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("search", help="search the space on a dataset (local Ray or a cluster)")
    p.add_argument("--data", default=None, help="dataset name (ctsnas datasets) or CSV path")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--target", default=None)
    p.add_argument("--univariate", action="store_true")
    p.add_argument("--horizons", default=None, help="comma-separated H (default 24,48)")
    p.add_argument("--budget", type=int, default=None, help="number of trials")
    p.add_argument("--profile", default=None, help="smoke, small (default) or paper")
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

    add_zeroshot_parsers(sub)

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
