"""``ctsnas forecast --model timellm``: Time-LLM with TAPR / GRA-M on request, over a local
language model (or none), on raw values or a saved encoder's representations."""
from __future__ import annotations

TIMELLM_FLAGS = {"llm": "--llm", "tapr": "--tapr", "gram": "--gram"}


def check_timellm_args(args) -> tuple:
    """``(epochs, horizon)`` of ``ctsnas forecast --model timellm``.

    Raises:
        ValueError: options that do not apply to Time-LLM, a bad ``--epochs``.
    """
    from downstream.timellm import train

    for given, flag in ((args.arch, "--arch"), (args.memory_read, "--memory-read"),
                        (args.mode, "--mode"), (args.no_label_delay or None, "--no-label-delay")):
        if given is not None:
            raise ValueError(f"{flag.lstrip('-').replace('-', '_')}: got {given!r} with model "
                             "timellm; allowed: left out")
    epochs = train.EPOCHS if args.epochs is None else args.epochs
    if epochs < 1:
        raise ValueError(f"epochs: got {epochs}; allowed: an int >= 1")
    if args.split != "test":
        raise ValueError(f"split: got {args.split!r} with model timellm; allowed: test (the "
                         "validation split picks the epoch)")
    return epochs, 96 if args.horizon is None else args.horizon


def run(args, date_options: dict) -> dict:
    """Run Time-LLM for the parsed ``args``."""
    from ..engine.timellm import run_timellm

    epochs, horizon = check_timellm_args(args)
    return run_timellm(args.data, horizon, args.data_dir, args.tapr, args.gram, args.llm,
                       args.encoder, args.seed, epochs, rebuild_bank=args.rebuild_bank,
                       **date_options)


def format_timellm(out: dict) -> str:
    """The human-readable result of ``ctsnas forecast --model timellm``."""
    from downstream.longterm import REFERENCE_NAMES

    train, test = out["train"], out["test"]
    best = train["best_epoch"]
    warn = ("  note: the language model has random weights (the project's small GPT-2); it "
            "is not a pretrained LM" if out["llm_random_init"] else None)
    lines = [f"{out['model']} on {out['data']}, H={out['horizon']}, lookback {out['lookback']}, "
             f"input: {out['input']}, language model: {out['llm']}",
             f"  training: {len(train['val_mse'])} epochs, {train['epoch_seconds']:.0f} s per "
             f"epoch, best epoch {'-' if best is None else best + 1}, "
             f"{out['parameters']:,} trainable parameters (checkpoint in {out['work_dir']})",
             "  test MSE / MAE (standardised scale):",
             f"    {out['model']:<28} {test['mse']:.4f} / {test['mae']:.4f}   "
             f"{test['n_samples']} samples",
             *(f"    {name:<28} {out['references'][key]['mse']:.4f} / "
               f"{out['references'][key]['mae']:.4f}"
               for key, name in REFERENCE_NAMES.items())]
    return "\n".join(lines + ([warn] if warn else []))
