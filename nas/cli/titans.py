"""``ctsnas forecast --model titans``: the Titans memory-as-context forecaster on raw values or
on a saved encoder's causal representations, long-horizon protocol, test modes A / B / C."""
from __future__ import annotations

from pathlib import Path

TITANS_FLAGS = {"mode": "--mode", "path": "--encoder", "epochs": "--epochs",
                "linear_skip": "--linear-skip"}


def check_titans_args(args) -> tuple:
    """``(modes, epochs, horizon)`` of ``ctsnas forecast --model titans``.

    Raises:
        ValueError: options that do not apply to Titans, a bad ``--mode`` or ``--epochs``.
    """
    from downstream.titans import MODES, protocol

    for given, flag in ((args.arch, "--arch"), (args.memory_read, "--memory-read"),
                        (args.no_label_delay or None, "--no-label-delay")):
        if given is not None:
            raise ValueError(f"{flag.lstrip('-').replace('-', '_')}: got {given!r} with model "
                             "titans; allowed: left out (Titans is its own architecture; "
                             "mode C always waits for complete labels)")
    modes = [m.strip() for m in (args.mode or "A").split(",")]
    bad = [m for m in modes if m not in MODES]
    if bad or len(set(modes)) != len(modes):
        raise ValueError(f"mode: got {args.mode!r}; allowed: one or more of {list(MODES)}, "
                         "comma-separated, e.g. A,B,C")
    epochs = protocol.EPOCHS if args.epochs is None else args.epochs
    if epochs < 1:
        raise ValueError(f"epochs: got {epochs}; allowed: an int >= 1")
    return tuple(modes), epochs, 96 if args.horizon is None else args.horizon


def run(args, progress, date_options: dict) -> dict:
    """Run Titans for the parsed ``args`` (after :func:`check_titans_args`)."""
    from ..engine.titans import run_titans

    modes, epochs, horizon = check_titans_args(args)
    curve = args.curve or str(Path("runs") / "forecast" /
                              f"{Path(args.data).stem}-titans-H{horizon}.png")
    return run_titans(args.data, horizon, modes, args.data_dir, args.encoder, args.split,
                      args.seed, epochs, curve, progress, linear_skip=args.linear_skip,
                      **date_options)


def format_titans(out: dict) -> str:
    """The human-readable result of ``ctsnas forecast --model titans``."""
    train, cfg = out["train"], out["config"]
    best = train["best_epoch"]
    lines = [f"Titans (memory as context) on {out['data']}, H={out['horizon']}, lookback "
             f"{out['lookback']}, input: {out['input']}",
             f"  model: width {cfg['width']}, depth {cfg['depth']}, segments of "
             f"{cfg['segment_len']}, {out['parameters']:,} parameters"
             f"{', linear skip' if cfg.get('linear_skip') else ''}",
             f"  training: {len(train['val_mse'])} epochs, {train['epoch_seconds']:.0f} s per "
             f"epoch, best epoch {'-' if best is None else best + 1} (validation MSE "
             f"{min(train['val_mse']):.4f})",
             f"  {out['split']} split, MSE / MAE (standardised scale):"]
    names = {"A": "mode A (fresh memory)", "B": "mode B (memory carried)",
             "C": "mode C (memory + online steps)"}
    for m, r in out["modes"].items():
        lines.append(f"    {names[m]:<32} {r['mse']:.4f} / {r['mae']:.4f}   "
                     f"{r['n_samples']} samples, {r['seconds_per_step'] * 1e3:.1f} ms per step")
    from downstream.longterm import REFERENCE_NAMES

    for key, name in REFERENCE_NAMES.items():
        ridge = out["references"][key]
        lines.append(f"    {name:<32} {ridge['mse']:.4f} / {ridge['mae']:.4f}")
    if out.get("curve_png"):
        lines.append(f"  cumulative-MSE curve: {out['curve_png']}")
    return "\n".join(lines)
