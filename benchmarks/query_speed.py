"""Zero-shot ranking speed: sampling N candidates under the cost cap, task features and T-AHC
ranking with the shipped comparator, from sampling to the sorted list (seconds).

    python benchmarks/query_speed.py [--data co2] [--samples 20000] [--horizon 12] [--repeat 3]
"""
from __future__ import annotations

import argparse

import downstream as ds
from nas.zeroshot.query import check_query, rank_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="co2")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--horizon", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    task = ds.make_task(ds.load(args.data, args.data_dir), univariate=True)
    config = check_query({"samples": args.samples, "top": 5})
    for i in range(args.repeat):
        r = rank_task(task, args.horizon, config)
        print(f"run {i + 1}: {r['n_candidates']} candidates ranked in {r['total_seconds']:.1f} s "
              f"(task features {r['task_features_seconds']:.2f} s, sampling "
              f"{r['sample_seconds']:.1f} s, ranking {r['rank_seconds']:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
