"""Training speed and peak memory of the ``ts2vec`` preset at paper scale on ETTh1 univariate.

Set-up as the TS2Vec forecasting protocol: OT plus 7 standardised calendar covariates (C = 8),
training rows [0, 8640), sections of at most 3000 steps, batch 8, 200 iterations, 2 threads.
Prints seconds per iteration and the peak resident memory (bytes) of the process.

    python benchmarks/train_speed.py [--data-dir ../shared/datasets] [--iters 200]
    python benchmarks/train_speed.py --iters 40 --loss-form ts2vec   # A/B against TS2Vec's form

``--loss-form ts2vec`` swaps our NT-Xent kernel for the construction of TS2Vec's own loss
(Gram matrix, tril/triu copies without the diagonal, log_softmax; Yue et al. 2022, Eq. 1-2),
so that the two can be timed on the same machine in the same minutes: this VM's speed drifts by
+-15% between runs, more than the difference being measured.
"""
from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import downstream as ds
import search_spaces as ss
from search_spaces import learner
from search_spaces.learner import losses

ROOT = Path(__file__).resolve().parents[1]


def load_etth1_univariate(data_dir: Path) -> np.ndarray:
    """(1, 8640, 8) training array of the probe's task: 7 calendar covariates and OT, each
    standardised on the training split (downstream.make_task, as TS2Vec's loader)."""
    task = ds.make_task(ds.load("ETTh1", data_dir), univariate=True)
    start, end = task.splits["train"]
    return task.x[None, start:end]


def ts2vec_form_nt_xent(za, zb, sim, temperature):
    """NT-Xent built as TS2Vec builds it: za, zb (G, K, D) -> scalar (dot similarity only)."""
    G, K, _ = za.shape
    if K < 2:
        return za.new_zeros(())
    z = torch.cat([za, zb], dim=1)  # G x 2K x D
    sim_ = torch.matmul(z, z.transpose(1, 2))  # G x 2K x 2K
    logits = torch.tril(sim_, diagonal=-1)[:, :, :-1] + torch.triu(sim_, diagonal=1)[:, :, 1:]
    logits = -F.log_softmax(logits, dim=-1)
    i = torch.arange(K)
    return (logits[:, i, K + i - 1].mean() + logits[:, K + i, i].mean()) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--iters", type=int, default=None, help="default: TS2Vec's rule (200)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--loss-form", choices=["ours", "ts2vec"], default="ours",
                        help="NT-Xent kernel: ours (blocked Gram) or TS2Vec's construction")
    args = parser.parse_args()
    if args.loss_form == "ts2vec":
        losses.LOSS_FUNCTIONS["NT-Xent"] = ts2vec_form_nt_xent
    torch.set_num_threads(args.threads)
    series = load_etth1_univariate(args.data_dir)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    _, record = learner.fit(ss.preset("ts2vec"), series, {"n_iters": args.iters} if args.iters
                       else "paper", seed=0)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"ts2vec preset, ETTh1 univariate (1, 8640, 8), sections {record['n_train_sections']} "
          f"x {record['train_length']}, batch 8, threads {args.threads}, loss form {args.loss_form}")
    print(f"iterations        {record['n_iters']} ({record['status']})")
    print(f"seconds/iteration {record['seconds'] / record['n_iters']:.3f}  (reference TS2Vec: ~0.8)")
    print(f"total seconds     {wall:.1f}")
    print(f"parameters        {record['n_params']}")
    print(f"peak RSS bytes    {peak} (before training {before}; "
          f"training added {peak - before})")
    print(f"final loss        {record['loss_curve'][-1]:.4f}")


if __name__ == "__main__":
    main()
