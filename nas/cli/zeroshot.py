"""``ctsnas seeds``, ``ctsnas comparator`` and ``ctsnas query``: the zero-shot commands."""
from __future__ import annotations

import json

from .common import UsageError, add_data_args, date_options, finite_seconds, flag_error


def cmd_seeds(args) -> int:
    from ..zeroshot import seeds

    try:
        if args.seeds_command == "export":
            counts = seeds.export(args.run_dir, args.out, merge=args.merge)
            print(json.dumps(counts))
            return 0
        given = {"per_task": args.per_task, "shared": args.shared, "profile": args.profile,
                 "seed": args.seed, "probe_stride": args.probe_stride,
                 "max_cost": args.max_cost, "data_dir": args.data_dir,
                 "noise_specs": args.noise_specs, "skip_exported": args.skip_exported,
                 "workers": args.workers, "trial_timeout": args.trial_timeout,
                 "address": args.address}
        if args.suite != "default":
            given["slices"] = _suite_file(args.suite)
        given = {k: v for k, v in given.items() if v is not None}
        summary = seeds.generate(given, args.run_dir, resume=args.resume,
                                 progress=not args.quiet, wait_lock=args.wait_lock or 0)
    except ValueError as exc:
        raise flag_error(exc) from None
    print(json.dumps(summary))
    return 0


def cmd_comparator(args) -> int:
    from ..zeroshot import comparators as zeroshot
    from ..zeroshot.features import load_features, train_reference
    from ..zeroshot.seeds import read_records

    if args.comparator_command == "reference":
        print(json.dumps(train_reference(args.profile, args.seed)))
        return 0
    for name in ("epochs", "members"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name}: got {getattr(args, name)}; allowed: an int >= 1")
    try:
        records = read_records(args.records)
    except OSError as exc:
        raise UsageError(f"--records: cannot read {args.records!r}: {exc}") from None
    try:
        features = load_features(records, args.data_dir)
    except ValueError as exc:
        raise flag_error(exc, {"task_id": "--records"}) from None
    kw = {"epochs": args.epochs, "seed": args.seed, "members": args.members}
    if args.comparator_command == "train":
        meta = zeroshot.train(records, features, args.out, **kw)
        print(json.dumps({k: v for k, v in meta.items() if k != "norm"}, indent=2))
        return 0
    result = zeroshot.evaluate(records, features, weights_dir=args.holdout_weights, **kw)
    if args.out_json:
        with open(args.out_json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    print(zeroshot.format_evaluation(result))
    return 0


def cmd_query(args) -> int:
    from ..zeroshot.query import format_query, query

    config = {"data": args.data, "data_dir": args.data_dir, "target": args.target,
              "univariate": args.univariate, "horizon": args.horizon,
              "samples": args.samples, "top": args.top, "train_top": args.train_top,
              "seed": args.seed, "profile": args.profile, "workers": args.workers,
              "address": args.address, "compare_ts2vec": args.compare_ts2vec,
              "weights": args.weights, "trial_timeout": args.trial_timeout,
              "anchor_share": args.anchor_share, **date_options(args)}
    try:
        result = query(config, args.run_dir)
    except ValueError as exc:
        raise flag_error(exc) from None
    print(json.dumps(result, indent=2) if args.json else format_query(result))
    return 0


def _stride(text: str):
    return text if text == "auto" else int(text)


def _suite_file(path: str) -> list:
    try:
        with open(path, encoding="utf-8") as fh:
            slices = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"--suite: cannot read {path!r} as a JSON list of slices "
                         f"({exc})") from None
    if not isinstance(slices, list) or not slices:
        raise UsageError(f"--suite: {path!r} must hold a non-empty JSON list of slices")
    return slices


def add_parsers(sub) -> None:
    """Add the seeds, comparator and query sub-commands to ``sub``."""
    seeds = sub.add_parser("seeds", help="generate and export (task, spec, score) seed records"
                           ).add_subparsers(dest="seeds_command", required=True)
    p = seeds.add_parser("generate", help="evaluate sampled specs on every task of the suite")
    p.add_argument("--suite", default="default",
                   help="'default' (seeds.suite.SLICES) or a JSON file of slices")
    p.add_argument("--per-task", type=int, default=None, help="specs per slice (default 50)")
    p.add_argument("--shared", type=int, default=None,
                   help="of which shared by every slice (default 24, incl. ts2vec)")
    p.add_argument("--profile", default=None,
                   help="training length (default: screen; 'seed' is its deprecated name)")
    p.add_argument("--probe-stride", type=_stride, default=None,
                   help="probe every k-th training sample (default auto: ~1000 samples)")
    p.add_argument("--max-cost", type=float, default=None,
                   help="cost cap relative to the ts2vec preset (default 1.5)")
    p.add_argument("--noise-specs", type=int, default=None,
                   help="specs re-run with seed+1 on two slices (label noise; default 50)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--trial-timeout", type=finite_seconds, default=None, help="seconds per trial")
    p.add_argument("--address", default=None, help="join a Ray cluster: auto or host:port")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--run-dir", default="runs/seeds")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--wait-lock", type=finite_seconds, default=None, metavar="SECONDS",
                   help="wait up to SECONDS for another generation holding --run-dir "
                        "(default: refuse at once)")
    p.add_argument("--skip-exported", default=None, metavar="DIR",
                   help="skip the trials whose records DIR (an export of the same plan) "
                        "already holds: continue a plan without its run directory (failed "
                        "trials are not exported, so they run again)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_seeds)
    p = seeds.add_parser("export", help="write records.jsonl and noise.jsonl")
    p.add_argument("--run-dir", default="runs/seeds")
    p.add_argument("--out", default="seeds")
    p.add_argument("--merge", action="store_true",
                   help="keep the records already in --out and add this run's new ones")
    p.set_defaults(func=cmd_seeds)

    comp = sub.add_parser("comparator", help="train or evaluate the T-AHC comparator"
                          ).add_subparsers(dest="comparator_command", required=True)
    for name, text in (("train", "fit T-AHC on all seed records and write its weights"),
                       ("evaluate", "leave-one-dataset-out Kendall tau and top-5% hit rate")):
        p = comp.add_parser(name, help=text)
        p.add_argument("--records", default="seeds/records.jsonl")
        p.add_argument("--data-dir", default=None)
        p.add_argument("--epochs", type=int, default=30)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--members", type=int, default=1,
                       help="train M comparators (seeds S, S+1, ...) and rank by their mean "
                            "score (default 1)")
        if name == "train":
            p.add_argument("--out", required=True, metavar="DIR",
                           help="folder to write the weights to (tahc.pt, tahc.json); read it "
                                "with `ctsnas query --weights DIR`")
        else:
            p.add_argument("--out-json", default=None, help="also write the result as JSON")
            p.add_argument("--holdout-weights", default=None,
                           help="save each held-out comparator under DIR/holdout-<dataset>")
        p.set_defaults(func=cmd_comparator)
    p = comp.add_parser("reference", help="maintainers: retrain the shipped reference encoder "
                        "on co2 (rewrites it in the package; invalidates the shipped "
                        "seeds/task_features.json and comparator weights)")
    p.add_argument("--profile", default="paper")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_comparator)

    p = sub.add_parser("query", help="zero-shot: rank random candidates for a new dataset")
    add_data_args(p)
    p.add_argument("--horizon", type=int, required=True, help="forecast horizon H")
    p.add_argument("--samples", type=int, default=20000, help="candidates to rank")
    p.add_argument("--top", type=int, default=5, help="specs to print")
    p.add_argument("--anchor-share", type=float, default=None,
                   help="share of candidates drawn around the ts2vec preset (default 0)")
    p.add_argument("--train-top", type=int, default=0,
                   help="train the top K on Ray and report the best with test metrics")
    p.add_argument("--compare-ts2vec", action="store_true",
                   help="with --train-top, also train the ts2vec preset for comparison")
    p.add_argument("--profile", default=None,
                   help="training length of --train-top (default: screen)")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--trial-timeout", type=finite_seconds, default=None)
    p.add_argument("--address", default=None)
    p.add_argument("--weights", default=None, metavar="DIR",
                   help="comparator folder written by `ctsnas comparator train --out DIR` "
                        "(default: the shipped comparator, read only)")
    p.add_argument("--run-dir", default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_query)
