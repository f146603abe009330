"""``ctsnas evaluate``: train one spec (or load a saved encoder) and probe it (validation and
test metrics); ``ctsnas train``: train one spec and save its encoder."""
from __future__ import annotations

import json

from .common import (
    FLAGS,
    UsageError,
    add_data_args,
    add_memory_arg,
    date_options,
    flag_error,
    max_memory,
    parse_horizons,
)


def cmd_evaluate(args) -> int:
    from ..engine.evaluate import evaluate, evaluate_encoder
    from .report import format_evaluation

    horizons = parse_horizons(args.horizons)
    extra = {"max_bytes": max_memory(args.max_memory), "features": args.features,
             **date_options(args)}
    try:
        if args.encoder:
            for flag, value in (("--profile", args.profile), ("--seed", args.seed)):
                if value is not None:
                    raise UsageError(f"{flag}: got {value!r}; allowed: omitted with --encoder "
                                     "(the saved encoder is not retrained)")
            result = evaluate_encoder(args.data, args.encoder, horizons, args.target,
                                      args.univariate, args.data_dir,
                                      references=not args.no_references, **extra)
        else:
            result = evaluate(args.data, args.arch or "ts2vec", args.profile or "small",
                              horizons, args.target, args.univariate, args.data_dir,
                              args.seed or 0, references=not args.no_references, **extra)
    except UsageError:
        raise
    except ValueError as exc:
        raise flag_error(exc, {**FLAGS, "path": "--encoder"}) from None
    print(json.dumps(result, indent=2) if args.json else format_evaluation(result))
    return 0


def cmd_train(args) -> int:
    from ..engine.evaluate import train_encoder
    from .report import format_training

    horizons = parse_horizons(args.horizons)
    extra = {"max_bytes": max_memory(args.max_memory), "features": args.features,
             **date_options(args)}
    try:
        result = train_encoder(args.data, args.arch, args.out, args.profile, horizons,
                               args.target, args.univariate, args.data_dir, args.seed, **extra)
    except ValueError as exc:
        raise flag_error(exc, {**FLAGS, "path": "--out"}) from None
    print(json.dumps(result, indent=2) if args.json else format_training(result))
    return 0 if result["status"] == "ok" else 1


FEATURES_HELP = ("probe features: repr (default, the TS2Vec protocol) or repr+raw (the "
                 "representation next to the raw lookback window, one Ridge)")


def add_features_arg(p) -> None:
    """The ``--features`` option (checked by the library, see
    :func:`downstream.probes.check_features`)."""
    p.add_argument("--features", default="repr", help=FEATURES_HELP)


def add_parsers(sub) -> None:
    """Add the evaluate and train sub-commands to ``sub``."""
    p = sub.add_parser("evaluate", help="train one spec (or load a saved encoder) and print "
                                        "validation and test metrics")
    add_data_args(p)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--arch", default=None,
                       help="preset name or spec JSON file to train (default: ts2vec)")
    which.add_argument("--encoder", default=None, metavar="PATH",
                       help="a saved encoder (ctsnas train --out, or a search's "
                            "best_encoder.pt) to probe without training")
    p.add_argument("--profile", default=None,
                   help="training length: smoke, screen, small (default) or paper")
    p.add_argument("--horizons", default="24,48", help="comma-separated H, e.g. 24,48,168")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--no-references", action="store_true",
                   help="skip the raw-lookback and random-encoder rows")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_features_arg(p)
    add_memory_arg(p)
    p.set_defaults(func=cmd_evaluate)

    t = sub.add_parser("train", help="train one spec on the training split and save its "
                                     "encoder (probed on the validation split)")
    add_data_args(t)
    t.add_argument("--arch", default="ts2vec", help="preset name or spec JSON file")
    t.add_argument("--profile", default="small",
                   help="training length: smoke, screen, small or paper")
    t.add_argument("--seed", type=int, default=0, help="random seed")
    t.add_argument("--out", required=True, metavar="PATH",
                   help="file to write the encoder to (read it with --encoder)")
    t.add_argument("--horizons", default="24,48",
                   help="comma-separated H of the validation probe, e.g. 24,48")
    t.add_argument("--json", action="store_true", help="print the result as JSON")
    add_features_arg(t)
    add_memory_arg(t)
    t.set_defaults(func=cmd_train)
