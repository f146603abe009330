"""``ctsnas forecast``: a searched encoder as the backbone of an online forecaster (FSNet and
its baselines NoMem, OGD, ER, DER++) on the FSNet protocol, or as the input of Titans
(:mod:`nas.cli.titans`) and Time-LLM (:mod:`nas.cli.timellm`), beside its reference rows."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from . import timellm, titans
from .common import FLAGS, add_date_args, date_options, flag_error

ONLINE_FLAGS = {**FLAGS, "model": "--model", "memory_read": "--memory-read", "split": "--split",
                "path": "--encoder", "label_delay": "--no-label-delay", "epochs": "--epochs",
                "threads": "--threads", "arch": "--arch", "no_label_delay": "--no-label-delay",
                "rebuild_bank": "--rebuild-bank", **titans.TITANS_FLAGS,
                **timellm.TIMELLM_FLAGS}


def _progress(quiet: bool):
    if quiet:
        return None

    def show(done, total):
        print(f"\r  online step {done}/{total}", end="", file=sys.stderr, flush=True)
        if done + 500 > total:
            print(file=sys.stderr)
    return show


def cmd_forecast(args) -> int:
    try:
        if args.threads is not None:
            if args.threads < 1:
                raise ValueError(f"threads: got {args.threads}; allowed: an int >= 1")
            import torch

            torch.set_num_threads(args.threads)
        if args.model != "timellm":
            _refuse_timellm_options(args)
        if args.model != "titans" and args.linear_skip:
            raise ValueError(f"linear_skip: got True with model {args.model}; allowed: only "
                             "with model titans")
        if args.model == "titans":
            out = titans.run(args, _progress(args.quiet), date_options(args))
        elif args.model == "timellm":
            out = timellm.run(args, date_options(args))
        else:
            out = _run_online(args)
    except ValueError as exc:
        raise flag_error(exc, ONLINE_FLAGS) from None
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        show = {"titans": titans.format_titans, "timellm": timellm.format_timellm}
        print(show.get(args.model, format_forecast)(out))
    return 0


def _refuse_timellm_options(args) -> None:
    for given, flag in ((args.tapr or None, "tapr"), (args.gram or None, "gram"),
                        (args.llm, "llm"), (args.rebuild_bank or None, "rebuild_bank")):
        if given is not None:
            raise ValueError(f"{flag}: got {given!r} with model {args.model}; allowed: only "
                             "with model timellm")


def _run_online(args) -> dict:
    from ..engine.forecast import run_forecast

    if args.mode is not None:
        raise ValueError(f"mode: got {args.mode!r} with model {args.model}; allowed: only "
                         "with model titans")
    horizon = 24 if args.horizon is None else args.horizon
    epochs = 6 if args.epochs is None else args.epochs
    if epochs < 0:
        raise ValueError(f"epochs: got {epochs}; allowed: an int >= 0")
    curve = args.curve or str(Path("runs") / "forecast" /
                              f"{Path(args.data).stem}-{args.model}-H{horizon}.png")
    return run_forecast(args.data, args.model, horizon, args.data_dir, args.arch,
                        args.encoder, args.split, args.seed, args.memory_read,
                        not args.no_label_delay, epochs, curve, _progress(args.quiet),
                        **date_options(args))


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

    p = sub.add_parser("forecast", help="online forecasting (FSNet, NoMem, OGD, ER, DER++), "
                                        "Titans or Time-LLM, with a searched encoder as "
                                        "backbone or input")
    p.add_argument("--model", required=True,
                   help=f"one of {', '.join(VARIANTS)} (fsnet-index = fsnet with "
                        "--memory-read index), titans (long-horizon, see --mode) or timellm "
                        "(see --tapr, --gram, --llm)")
    p.add_argument("--mode", default=None,
                   help="titans test modes, comma-separated: A (fresh memory per window, "
                        "default), B (memory carried window to window, weights frozen), C (B "
                        "plus an online step once each label is complete)")
    p.add_argument("--linear-skip", action="store_true",
                   help="titans: add a linear map of each channel's window to the forecast "
                        "(RLinear as a skip path)")
    p.add_argument("--tapr", action="store_true", help="timellm: add TAPR (trend-aware patch "
                   "router)")
    p.add_argument("--gram", action="store_true", help="timellm: add GRA-M (retrieval-"
                   "augmented memory over a bank of training windows)")
    p.add_argument("--llm", default=None, metavar="PATH|none",
                   help="timellm: a local Hugging Face causal LM directory, or none (one "
                        "attention layer instead; default: the project's small GPT-2 with "
                        "random weights, built under runs/llm/)")
    p.add_argument("--rebuild-bank", action="store_true",
                   help="timellm --gram: rebuild the memory bank of a resumed run")
    p.add_argument("--data", required=True, help="dataset name (ctsnas datasets) or CSV path")
    p.add_argument("--data-dir", default=None, help="folder of the dataset files")
    add_date_args(p)
    p.add_argument("--horizon", type=int, default=None,
                   help="H (FSNet: 1, 24, 48, default 24; Titans, Time-LLM: 96, 192, 336, "
                        "720, default 96)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--encoder", default=None, metavar="PATH",
                       help="a saved contrastive encoder as the pretrained backbone (Titans: "
                            "its frozen causal representations as input; Time-LLM: added per "
                            "patch), from a multivariate run on the same variables")
    which.add_argument("--arch", default=None, metavar="SPEC",
                       help="a preset or spec JSON whose architecture is trained from scratch "
                            "(default: ts2vec, the paper's backbone)")
    p.add_argument("--memory-read", default=None,
                   help=f"fsnet memory read: {' or '.join(READS)} (index = the public FSNet "
                        "code, which disables the memory; for the ablation)")
    p.add_argument("--split", default="test", help="stream: test (default) or val")
    p.add_argument("--epochs", type=int, default=None,
                   help="warm-up epochs on train (default 6); Titans and Time-LLM: most "
                        "training epochs (default 10, best validation epoch kept)")
    p.add_argument("--no-label-delay", action="store_true",
                   help="update right after each prediction, as the FSNet code does (uses "
                        "labels up to H-1 steps before they exist)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: torch's, all cores; 1 is faster for these "
                        "small steps when other work shares the cores)")
    p.add_argument("--curve", default=None, metavar="PNG",
                   help="where to write the cumulative-MSE plot (default "
                        "runs/forecast/DATA-MODEL-HH.png)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_forecast)
