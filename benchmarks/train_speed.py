"""Training speed and peak memory of the ``ts2vec`` preset at paper scale on ETTh1 univariate.

Set-up as the TS2Vec forecasting protocol: OT plus 7 standardised calendar covariates (C = 8),
training rows [0, 8640), sections of at most 3000 steps, batch 8, 200 iterations, 2 threads.
Prints seconds per iteration and the peak resident memory (bytes) of the process.

    python benchmarks/train_speed.py [--data-dir ../shared/datasets] [--iters 200]
"""
from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import torch

import downstream as ds
import search_spaces as ss

ROOT = Path(__file__).resolve().parents[1]


def load_etth1_univariate(data_dir: Path) -> np.ndarray:
    """(1, 8640, 8) training array of the probe's task: 7 calendar covariates and OT, each
    standardised on the training split (downstream.make_task, as TS2Vec's loader)."""
    task = ds.make_task(ds.load("ETTh1", data_dir), univariate=True)
    start, end = task.splits["train"]
    return task.x[None, start:end]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--iters", type=int, default=None, help="default: TS2Vec's rule (200)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    series = load_etth1_univariate(args.data_dir)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    _, record = ss.fit(ss.preset("ts2vec"), series, {"n_iters": args.iters} if args.iters
                       else "paper", seed=0)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"ts2vec preset, ETTh1 univariate (1, 8640, 8), sections {record['n_train_sections']} "
          f"x {record['train_length']}, batch 8, threads {args.threads}")
    print(f"iterations        {record['n_iters']} ({record['status']})")
    print(f"seconds/iteration {record['seconds'] / record['n_iters']:.3f}  (reference TS2Vec: ~0.8)")
    print(f"total seconds     {wall:.1f}")
    print(f"parameters        {record['n_params']}")
    print(f"peak RSS bytes    {peak} (before training {before}; "
          f"training added {peak - before})")
    print(f"final loss        {record['loss_curve'][-1]:.4f}")


if __name__ == "__main__":
    main()
