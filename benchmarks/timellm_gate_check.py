"""What GRA-M's knowledge gate does in the Time-LLM ablation's trained models: for each
horizon and variant (+GRA-M, +TAPR + GRA-M) whose checkpoint (``runs/timellm/``, left by
``benchmarks/timellm_ablation.py``) is present, the best epoch's model on ETTh1's validation
split (with ``--test`` the test split too), as trained and with the gate held at 0 (patch
features left as they are; the retrieval embedding still prepended), and the mean gate and
match score (Time-LLM's GRA-M, :class:`downstream.timellm.gram.AdaptiveKnowledgeGate`).

    CTSNAS_DATA_DIR=../shared/datasets python benchmarks/timellm_gate_check.py [--seed 0] \\
        [--horizons 336,720] [--test]

Writes ``benchmarks/results/timellm_gate_check.json`` (``{"units": {key: row}}``, one unit
per checkpoint, under a file lock).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.unitstore import record  # noqa: E402
from downstream import longterm  # noqa: E402
from downstream.timellm import train  # noqa: E402
from nas.engine.timellm import build_model, resolve_llm, run_key  # noqa: E402
from nas.engine.titans import load_titans_task  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "timellm_gate_check.json"


def check(horizon: int, seed: int, tapr: bool = False, splits=("val",)) -> dict | None:
    """Per split (``val``, ``test``): the MSE as trained and with the gate at 0, the mean gate
    and match score; None when the checkpoint of +GRA-M (with ``tapr``: +TAPR + GRA-M),
    ``horizon`` and ``seed`` is absent."""
    name = "timellm+tapr+gram" if tapr else "timellm+gram"
    task = load_titans_task("ETTh1", os.environ.get("CTSNAS_DATA_DIR"), horizon)
    lm = resolve_llm(None, task)
    work = ROOT / "runs" / "timellm" / run_key(task, horizon, name, None, seed,
                                                lm.description)
    if not (work / "checkpoint.pt").exists():
        return None
    model = build_model(task, horizon, lm, tapr=tapr, gram=True,
                        bank_path=work / "memory_bank.pt", seed=seed)
    state = torch.load(work / "checkpoint.pt", weights_only=False)
    model.load_state_dict(state["best_state"] or state["model"], strict=False)
    windows = longterm.task_windows(task, horizon, longterm.LOOKBACK, None)
    out = {"best_epoch": state["history"]["best_epoch"]}
    for split in splits:
        out.update(_gate_effect(model, windows, task.splits[split], split))
    return out


def _gate_effect(model, windows, rows, split: str) -> dict:
    """``{split}_mse`` as trained, ``{split}_mse_gate_0`` with the knowledge gate's output
    replaced by 0 (current patch features kept), and the mean gate and match score over the
    split's windows ``rows``."""
    seen, hold = [], {"zero": False}

    def hook(module, inputs, out):
        seen.append((out[1].mean().item(), out[2].mean().item(), out[1].numel()))
        if hold["zero"]:
            return inputs[0], torch.zeros_like(out[1]), out[2]  # gate 0: current features
        return out

    handle = model.prefix_modules["gram"].gram.gate.register_forward_hook(hook)
    try:
        mse = train.evaluate(model, windows, rows)["mse"]
        n = sum(c for *_, c in seen)
        gate = sum(g * c for g, _, c in seen) / n
        match = sum(m * c for _, m, c in seen) / n
        hold["zero"] = True
        zero = train.evaluate(model, windows, rows)["mse"]
    finally:
        handle.remove()
    return {f"{split}_mse": mse, f"{split}_mse_gate_0": zero, f"{split}_mean_gate": gate,
            f"{split}_mean_match": match}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--horizons", default="96,192,336,720", help="comma-separated H")
    parser.add_argument("--test", action="store_true",
                        help="the test split too (as the validation split)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("CTSNAS_BENCH_THREADS", "1")))
    os.chdir(ROOT)
    splits = ("val", "test") if args.test else ("val",)
    for (variant, tapr), h in [(v, h) for v in (("+gram", False), ("+both", True))
                               for h in map(int, args.horizons.split(","))]:
        row = check(h, args.seed, tapr, splits)
        if row is None:
            continue
        record(OUT, f"{variant}/H{h}/seed{args.seed}", row)
        for split in splits:
            print(f"{variant} H={h} {split}: MSE {row[f'{split}_mse']:.4f}, gate held at 0 "
                  f"{row[f'{split}_mse_gate_0']:.4f}; mean gate {row[f'{split}_mean_gate']:.3f},"
                  f" match {row[f'{split}_mean_match']:.3f}", flush=True)


if __name__ == "__main__":
    main()
