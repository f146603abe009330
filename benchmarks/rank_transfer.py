"""How far architecture rankings transfer between tasks in the shipped seed records: the bound
that a leave-one-dataset-out comparator faces.

On the shared block (the specs evaluated on every task), prints the mean Kendall tau between
the rankings of two tasks of the same dataset, of two tasks of different datasets, and the
leave-one-dataset-out *consensus*: each task ranked by the mean rank of the specs over the
other datasets' tasks -- what a perfect task-blind model of the training records would score on
these specs. Compare with the seed-to-seed noise ceiling (``seeds/noise_ceiling.json``).

    python benchmarks/rank_transfer.py [--records seeds/records.jsonl]
"""
from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, rankdata

ROOT = Path(__file__).resolve().parents[1]


def shared_matrix(records: list) -> tuple:
    """(task ids, their datasets, (n_tasks, n_shared) val MSE) over the specs every task has."""
    by_task = defaultdict(dict)
    for r in records:
        if np.isfinite(r["val_mse"]):
            by_task[r["task_id"]][r["spec_hash"]] = r
    tasks = sorted(by_task)
    counts = Counter(h for t in tasks for h in by_task[t])
    shared = sorted(h for h, c in counts.items() if c == len(tasks))
    mse = np.array([[by_task[t][h]["val_mse"] for h in shared] for t in tasks])
    datasets = [next(iter(by_task[t].values()))["dataset"] for t in tasks]
    return tasks, datasets, mse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", default=str(ROOT / "seeds" / "records.jsonl"))
    args = parser.parse_args()
    records = [json.loads(line) for line in Path(args.records).read_text().splitlines() if line]
    tasks, datasets, mse = shared_matrix(records)
    n = len(tasks)
    tau = np.array([[kendalltau(mse[i], mse[j]).statistic for j in range(n)] for i in range(n)])
    same = [tau[i, j] for i in range(n) for j in range(n) if i != j and datasets[i] == datasets[j]]
    cross = [tau[i, j] for i in range(n) for j in range(n) if datasets[i] != datasets[j]]
    ranks = np.array([rankdata(row) for row in mse])
    consensus = [kendalltau(-ranks[[j for j in range(n) if datasets[j] != datasets[i]]].mean(0),
                            -mse[i]).statistic for i in range(n)]
    print(f"{n} tasks of {len(set(datasets))} datasets, {mse.shape[1]} shared specs")
    print(f"Kendall tau, two tasks of the same dataset:      {np.mean(same):.3f}")
    print(f"Kendall tau, two tasks of different datasets:    {np.mean(cross):.3f}")
    print(f"leave-one-dataset-out consensus of the others:   {np.mean(consensus):.3f}")
    for d in sorted(set(datasets)):
        rows = [c for c, e in zip(consensus, datasets) if e == d]
        print(f"  held out {d:<14} consensus tau {np.mean(rows):.3f}")


if __name__ == "__main__":
    main()
