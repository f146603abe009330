"""Speed of the forecasting probe: causal sliding encoding of all 17,420 ETTh1 steps (padding
200, batch 256) with the ts2vec preset (D = 320), then the Ridge fits of the 5 horizons
24, 48, 168, 336, 720 (13 alphas each). Prints the two figures separately, in seconds.

    python benchmarks/probe_speed.py [--data-dir ../shared/datasets] [--threads 2]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import downstream as ds
import search_spaces as ss
from search_spaces import learner

ROOT = Path(__file__).resolve().parents[1]
HORIZONS = [24, 48, 168, 336, 720]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = ds.make_task(ds.load("ETTh1", args.data_dir), univariate=True, trim=False)
    start, end = task.splits["train"]
    encoder, _ = learner.fit(ss.preset("ts2vec"), task.x[None, start:end], "smoke", seed=0)
    t0 = time.perf_counter()
    features = ds.encode_task(encoder, task, len(task.x))
    encode_s = time.perf_counter() - t0
    result = ds.probe(task, HORIZONS, features, test=True)
    print(f"ETTh1 univariate, {len(task.x)} steps x {task.x.shape[1]} channels, D = "
          f"{features.shape[1]}, padding {ds.PADDING}, threads {args.threads}")
    print(f"causal encoding   {encode_s:.1f} s  (reference TS2Vec here: 23 s)")
    print(f"ridge, 5 horizons {result['ridge_seconds']:.1f} s  (reference TS2Vec here: 5 s)")


if __name__ == "__main__":
    main()
