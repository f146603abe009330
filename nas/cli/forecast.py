"""``ctsnas forecast``: a searched encoder as the backbone of an online forecaster (FSNet and
its baselines NoMem, OGD, ER, DER++), on the FSNet protocol, beside its reference rows."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .common import FLAGS, add_date_args, date_options, flag_error

ONLINE_FLAGS = {**FLAGS, "model": "--model", "memory_read": "--memory-read", "split": "--split",
                "path": "--encoder", "label_delay": "--no-label-delay"}


def _progress(quiet: bool):
    if quiet:
        return None

    def show(done, total):
        print(f"\r  online step {done}/{total}", end="", file=sys.stderr, flush=True)
        if done + 500 > total:
            print(file=sys.stderr)
    return show


def cmd_forecast(args) -> int:
    from ..engine.forecast import run_forecast

    curve = args.curve or str(Path("runs") / "forecast" /
                              f"{Path(args.data).stem}-{args.model}-H{args.horizon}.png")
    try:
        if args.epochs < 0:
            raise ValueError(f"epochs: got {args.epochs}; allowed: an int >= 0")
        out = run_forecast(args.data, args.model, args.horizon, args.data_dir, args.arch,
                           args.encoder, args.split, args.seed, args.memory_read,
                           not args.no_label_delay, args.epochs, curve, _progress(args.quiet),
                           **date_options(args))
    except ValueError as exc:
        raise flag_error(exc, ONLINE_FLAGS) from None
    print(json.dumps(out, indent=2) if args.json else format_forecast(out))
    return 0


def format_forecast(out: dict) -> str:
    """The human-readable result of ``ctsnas forecast``."""
    losses = out["warmup_losses"]
    warm = (f"{out['warmup_epochs']} epochs, {out['warmup_seconds']:.0f} s, loss "
            f"{losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "none")
    delay = ("labels used once complete" if out["label_delay"] else
             "immediate updates (FSNet code; labels up to H-1 steps early)")
    refs = out["references"]
    lines = [f"online forecasting on {out['data']}, H={out['horizon']}, lookback "
             f"{out['lookback']}: {out['model']} over the {out['backbone']} backbone",
             f"  warm-up on train: {warm}",
             f"  {out['split']} stream: {out['n_samples']} samples, batch size 1, {delay}; "
             f"{out['seconds_per_sample'] * 1e3:.1f} ms per sample, {out['triggers']} memory "
             "recalls (summed over layers)",
             "  cumulative MSE / MAE (standardised scale):",
             f"    {out['model']:<28} {out['mse']:.4f} / {out['mae']:.4f}",
             f"    {'raw Ridge (static)':<28} {refs['raw_ridge']['mse']:.4f} / "
             f"{refs['raw_ridge']['mae']:.4f}",
             f"    {'last value':<28} {refs['last_value']['mse']:.4f} / "
             f"{refs['last_value']['mae']:.4f}"]
    if out.get("curve_png"):
        lines.append(f"  cumulative-MSE curve: {out['curve_png']}")
    return "\n".join(lines)


def add_parsers(sub) -> None:
    """Add the forecast sub-command to ``sub``."""
    from downstream.online import READS, VARIANTS

    p = sub.add_parser("forecast", help="online forecasting (FSNet, NoMem, OGD, ER, DER++) "
                                        "with a searched encoder as backbone")
    p.add_argument("--model", required=True,
                   help=f"one of {', '.join(VARIANTS)} (fsnet-index = fsnet with "
                        "--memory-read index)")
    p.add_argument("--data", required=True, help="dataset name (ctsnas datasets) or CSV path")
    p.add_argument("--data-dir", default=None, help="folder of the dataset files")
    add_date_args(p)
    p.add_argument("--horizon", type=int, default=24, help="H (FSNet: 1, 24, 48)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--encoder", default=None, metavar="PATH",
                       help="a saved contrastive encoder as the pretrained backbone (from a "
                            "multivariate run on the same variables)")
    which.add_argument("--arch", default=None, metavar="SPEC",
                       help="a preset or spec JSON whose architecture is trained from scratch "
                            "(default: ts2vec, the paper's backbone)")
    p.add_argument("--memory-read", default=None,
                   help=f"fsnet memory read: {' or '.join(READS)} (index = the public FSNet "
                        "code, which disables the memory; for the ablation)")
    p.add_argument("--split", default="test", help="stream: test (default) or val")
    p.add_argument("--epochs", type=int, default=6, help="warm-up epochs on train (default 6)")
    p.add_argument("--no-label-delay", action="store_true",
                   help="update right after each prediction, as the FSNet code does (uses "
                        "labels up to H-1 steps before they exist)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--curve", default=None, metavar="PNG",
                   help="where to write the cumulative-MSE plot (default "
                        "runs/forecast/DATA-MODEL-HH.png)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_forecast)
