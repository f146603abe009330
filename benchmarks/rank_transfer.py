"""How far architecture rankings transfer between tasks in the shipped seed records: the bounds
that a leave-one-dataset-out comparator faces.

On the shared block (the specs evaluated on every task) it prints the mean Kendall tau between
the rankings of two tasks of the same slice (other horizon, same trained encoders), of the same
dataset (other slice) and of different datasets, then, for each task with its whole dataset
held out:

* *consensus*: the task ranked by the mean rank of the specs over the other datasets' tasks --
  what a perfect task-blind model of the training records scores on these specs;
* *oracle dataset*: the best single other dataset's consensus, chosen with the held-out
  task's own labels -- an upper bound for any model that transfers one dataset's ranking;
* *own other slice*: the consensus of the held-out dataset's *other* slices (data a
  leave-one-dataset-out model never sees), how well the same dataset predicts itself;
* *consensus top-3 vs ts2vec*: the best (by validation MSE) of the consensus' top 3 specs
  against the ts2vec preset on the task's validation MSE -- the zero-shot check with a perfect
  task-blind ranker, counted on validation (which favours the best-of-3 pick);
* *denoised*: for the tasks re-run with seed 1 (``seeds/noise.jsonl``), the tau between
  tasks of different slices with seed 0, with seed 1 and with the mean log-MSE of both seeds
  -- how much of the transfer gap is seed noise.

Compare with the seed-to-seed noise ceiling (``seeds/noise_ceiling.json``).

With ``--holdout-weights DIR`` (written by ``ctsnas comparator evaluate --holdout-weights
DIR``) the comparators trained without each dataset are scored on the same shared specs, on
the same two counts (tau, top-3 vs ts2vec).

    python benchmarks/rank_transfer.py [--records seeds/records.jsonl] [--noise seeds/noise.jsonl]
        [--holdout-weights DIR]
"""
from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, rankdata

ROOT = Path(__file__).resolve().parents[1]
TS2VEC_NAME = "ts2vec"


def shared_matrix(records: list) -> tuple:
    """(task ids, their records' ``task`` dicts, shared spec hashes, (n_tasks, n_shared) val
    MSE) over the specs every task has with a finite val MSE."""
    by_task = defaultdict(dict)
    for r in records:
        if np.isfinite(r["val_mse"]):
            by_task[r["task_id"]][r["spec_hash"]] = r
    tasks = sorted(by_task)
    counts = Counter(h for t in tasks for h in by_task[t])
    shared = sorted(h for h, c in counts.items() if c == len(tasks))
    mse = np.array([[by_task[t][h]["val_mse"] for h in shared] for t in tasks])
    meta = [next(iter(by_task[t].values()))["task"] for t in tasks]
    return tasks, meta, shared, mse


def _tau(a, b) -> float:
    return float(kendalltau(a, b).statistic)


def _consensus_tau(ranks, mse, i, rows) -> float:
    """Kendall tau of task i's -MSE against the mean rank (lower = better) over ``rows``."""
    return _tau(-ranks[rows].mean(0), -mse[i])


def seed_denoising(records: list, noise: list) -> list:
    """(task a, task b, tau seed 0, tau seed 1, tau of the mean log-MSE) for each pair of
    re-run tasks of different slices, over the specs both seeds have on all re-run tasks."""
    runs = [{(r["task_id"], r["spec_hash"]): r["val_mse"] for r in recs}
            for recs in (records, noise)]
    tasks = sorted({r["task_id"] for r in noise})
    slice_of = {r["task_id"]: r["task"]["slice_id"] for r in noise}
    specs = sorted(h for h in {r["spec_hash"] for r in noise}
                   if all(np.isfinite(run.get((t, h), np.nan)) for run in runs for t in tasks))
    logs = [{t: np.log([run[(t, h)] for h in specs]) for t in tasks} for run in runs]
    return [(a, b, _tau(logs[0][a], logs[0][b]), _tau(logs[1][a], logs[1][b]),
             _tau(logs[0][a] + logs[1][a], logs[0][b] + logs[1][b]))
            for k, a in enumerate(tasks) for b in tasks[k + 1:] if slice_of[a] != slice_of[b]]


def top3_wins(order_scores, mse, cand, ts2vec) -> int:
    """Tasks where the best (by val MSE) of the 3 best-scored ``cand`` specs (lower score =
    better) beats ts2vec; ``order_scores`` is (n_tasks, n_shared)."""
    wins = 0
    for i in range(len(mse)):
        top = np.array(cand)[np.argsort(order_scores[i][cand], kind="stable")[:3]]
        wins += int(mse[i, top].min() < mse[i, ts2vec])
    return wins


def comparator_scores(weights_dir, records: list, tasks: list, meta: list, shared: list):
    """(n_tasks, n_shared) negated scores of each task's hold-out comparator (lower = better)."""
    import comparator as cp
    from nas.zeroshot.comparators import load_trained, standardise
    from nas.zeroshot.features import load_features

    features = load_features(records)
    spec_of = {r["spec_hash"]: r["spec"] for r in records}
    specs = [spec_of[h] for h in shared]
    out = []
    for tid, m in zip(tasks, meta):
        model, info = load_trained(Path(weights_dir) / f"holdout-{m['dataset']}")
        out.append(-cp.rank(model, specs, standardise(features[tid], info["norm"])))
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", default=str(ROOT / "seeds" / "records.jsonl"))
    parser.add_argument("--noise", default=str(ROOT / "seeds" / "noise.jsonl"))
    parser.add_argument("--holdout-weights", default=None,
                        help="score the hold-out comparators in this folder too")
    args = parser.parse_args()
    import search_spaces as ss

    records, noise = ([json.loads(line) for line in Path(p).read_text().splitlines() if line]
                      for p in (args.records, args.noise))
    tasks, meta, shared, mse = shared_matrix(records)
    n, ds = len(tasks), [m["dataset"] for m in meta]
    sl = [m["slice_id"] for m in meta]
    tau = np.array([[_tau(mse[i], mse[j]) for j in range(n)] for i in range(n)])
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    print(f"{n} tasks of {len(set(ds))} datasets, {len(shared)} shared specs")
    for label, keep in (("same slice, other horizon", lambda i, j: sl[i] == sl[j]),
                        ("same dataset, other slice",
                         lambda i, j: ds[i] == ds[j] and sl[i] != sl[j]),
                        ("different datasets", lambda i, j: ds[i] != ds[j])):
        print(f"Kendall tau, two tasks, {label + ':':<28}"
              f"{np.mean([tau[i, j] for i, j in pairs if keep(i, j)]):.3f}")

    ranks = np.array([rankdata(row) for row in mse])
    others = [[j for j in range(n) if ds[j] != ds[i]] for i in range(n)]
    consensus = [_consensus_tau(ranks, mse, i, others[i]) for i in range(n)]
    oracle = [max(_consensus_tau(ranks, mse, i, [j for j in range(n) if ds[j] == d])
                  for d in set(ds) - {ds[i]}) for i in range(n)]
    own = [_consensus_tau(ranks, mse, i, [j for j in range(n)
                                          if ds[j] == ds[i] and sl[j] != sl[i]])
           for i in range(n)]
    print("leave one dataset out, mean over tasks:")
    print(f"  consensus of the other datasets:              {np.mean(consensus):.3f}")
    print(f"  oracle: best single other dataset:            {np.mean(oracle):.3f}")
    print(f"  own dataset's other slices (never seen):      {np.mean(own):.3f}")
    for d in sorted(set(ds)):
        rows = [c for c, e in zip(consensus, ds) if e == d]
        print(f"    held out {d:<14} consensus tau {np.mean(rows):.3f}")

    ts2vec = shared.index(ss.spec_hash(ss.preset(TS2VEC_NAME)))
    cand = [k for k in range(len(shared)) if k != ts2vec]
    consensus_ranks = np.array([ranks[others[i]].mean(0) for i in range(n)])
    wins = top3_wins(consensus_ranks, mse, cand, ts2vec)
    print(f"  consensus top-3 beats ts2vec (validation):    {wins}/{n} tasks ({wins / n:.0%})")
    if args.holdout_weights:
        scores = comparator_scores(args.holdout_weights, records, tasks, meta, shared)
        taus = [_tau(-scores[i], -mse[i]) for i in range(n)]
        wins = top3_wins(scores, mse, cand, ts2vec)
        print(f"  hold-out comparators ({args.holdout_weights}): tau {np.mean(taus):.3f}, "
              f"top-3 beats ts2vec {wins}/{n} tasks ({wins / n:.0%})")
    print("seed noise, tasks of different slices re-run with seed 1 (tau seed 0 / seed 1 / "
          "mean of both):")
    for a, b, t0, t1, both in seed_denoising(records, noise):
        print(f"  {a:<28} {b:<28} {t0:6.3f} {t1:6.3f} {both:6.3f}")


if __name__ == "__main__":
    main()
