"""How far a frozen encoder's representations drift from the training period to the
validation and test periods, beside the raw input's drift and the same spec's untrained
encoder: the measurement behind the docs' reading of the searched encoder in the Titans and
Time-LLM tables (added features that move more than the input between periods).

For each split and each feature set (T, D): every column is standardised with the training
split's mean and sd; the split's drift is the mean over columns of |mean of the standardised
column| (0 on the training split, in training sds) and its spread the mean standardised sd
(1 on the training split). Constant columns are left out.

    CTSNAS_DATA_DIR=../shared/datasets python benchmarks/encoder_drift.py [--data ETTh1] \\
        [--encoder PATH]   # default: the ablation's searched encoder (built if absent)

Writes ``benchmarks/results/encoder_drift.json`` (one unit per data set and encoder).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.titans_forecasting import encoder_path, untrained_copy  # noqa: E402
from benchmarks.unitstore import record  # noqa: E402
from downstream import longterm  # noqa: E402
from nas.engine.titans import load_titans_task  # noqa: E402
from search_spaces import learner  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "encoder_drift.json"


def drift(features: np.ndarray, splits: dict) -> dict:
    """``{split: {"mean_shift": float, "sd_ratio": float, "columns": int}}`` of features (T, D)
    against the training split's column means and sds (constant columns dropped)."""
    start, end = splits["train"]
    mean, sd = features[start:end].mean(0), features[start:end].std(0)
    keep = sd > 1e-8
    out = {}
    for name, (s, e) in splits.items():
        z = (features[s:e, keep] - mean[keep]) / sd[keep]
        out[name] = {"mean_shift": float(np.abs(z.mean(0)).mean()),
                     "sd_ratio": float(z.std(0).mean()), "columns": int(keep.sum())}
    return out


def measure(data: str, encoder: str) -> dict:
    """The drift of the raw input, the saved encoder's causal representations and the same
    spec's untrained encoder's (its seed), on ``data``'s splits."""
    task = load_titans_task(data, os.environ.get("CTSNAS_DATA_DIR"))
    trained = learner.ContrastiveLearner.load(encoder)
    untrained = untrained_copy(trained)
    start = time.perf_counter()
    rows = {"raw input": drift(np.asarray(task.x, dtype=np.float64), task.splits)}
    for name, model in (("trained encoder", trained), ("untrained encoder", untrained)):
        feats = np.asarray(longterm.causal_features(model, task), dtype=np.float64)
        rows[name] = drift(feats, task.splits)
    return {"data": data, "encoder": Path(encoder).name, "splits": task.splits,
            "repr_dim": trained.repr_dim, "drift": rows,
            "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="ETTh1")
    parser.add_argument("--encoder", default=None, help="saved encoder (.pt)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("CTSNAS_BENCH_THREADS", "1")))
    encoder = args.encoder or encoder_path(args.data, "searched", False)
    row = measure(args.data, encoder)
    record(OUT, f"{args.data}/{row['encoder']}", row)
    print(f"{args.data}, {row['encoder']}: mean |shift| in training sds (sd ratio)")
    for name, splits in row["drift"].items():
        print(f"  {name:18s} " + "  ".join(
            f"{s} {v['mean_shift']:.3f} ({v['sd_ratio']:.3f})" for s, v in splits.items()))


if __name__ == "__main__":
    main()
