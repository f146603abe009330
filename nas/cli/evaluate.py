"""``ctsnas evaluate``: train one spec and probe it (validation and test metrics)."""
from __future__ import annotations

import json

from .common import UsageError, add_data_args, parse_horizons


def cmd_evaluate(args) -> int:
    from ..engine.evaluate import evaluate
    from .report import format_evaluation

    horizons = parse_horizons(args.horizons)
    try:
        result = evaluate(args.data, args.arch, args.profile, horizons, args.target,
                          args.univariate, args.data_dir, args.seed,
                          references=not args.no_references)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(json.dumps(result, indent=2) if args.json else format_evaluation(result))
    return 0



def add_parsers(sub) -> None:
    """Add the evaluate sub-command to ``sub``."""
    p = sub.add_parser("evaluate", help="train one spec and print validation and test metrics")
    add_data_args(p)
    p.add_argument("--arch", default="ts2vec", help="preset name or spec JSON file")
    p.add_argument("--profile", default="small", help="smoke, small or paper")
    p.add_argument("--horizons", default="24,48", help="comma-separated H, e.g. 24,48,168")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-references", action="store_true",
                   help="skip the raw-lookback and random-encoder rows")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_evaluate)
