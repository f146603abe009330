"""Search throughput on this machine: trials per hour at the ``small`` profile with 1 and 2
Ray workers, and the per-trial overhead of Ray against calling the trial function in-process.

The trials are N ts2vec variants that differ only in learning rate and temperature (equal cost,
distinct hashes), trained and probed on the embedded co2 series, one thread per trial.

    python benchmarks/search_throughput.py [--trials 8] [--profile small]
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import tempfile
import time

import ray
import torch

import search_spaces as ss
from nas.engine.evaluate import prepare
from nas.engine.runner import DEFAULTS, Search
from nas.engine.store import RunStore
from nas.engine.trial import run_trial

HORIZONS = [4, 12]


def variants(n: int) -> list:
    out = []
    for lr, tau in itertools.product(ss.spec.LEARNING_RATES, ss.spec.TEMPERATURES):
        spec = ss.preset("ts2vec")
        spec["Train"]["lr"], spec["LossCell"]["temperature"] = lr, tau
        out.append(spec)
    return out[:n]


def in_process(specs, task, profile) -> float:
    torch.set_num_threads(1)
    start = time.perf_counter()
    for i, spec in enumerate(specs):
        run_trial(i, spec, dataclasses.asdict(task), HORIZONS, profile, 0, 1)
    return time.perf_counter() - start


def on_ray(specs, task, profile, workers: int) -> float:
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        config = {**DEFAULTS, "data": "co2", "horizons": HORIZONS, "profile": profile,
                  "trials": len(specs), "workers": workers}
        with tempfile.TemporaryDirectory() as tmp:
            store = RunStore(tmp)
            search = Search(config, store, task)
            ray.get([search.submit(0, specs[0]) for _ in range(workers)])  # warm the workers
            start = time.perf_counter()
            search.run(specs, progress=False)
            seconds = time.perf_counter() - start
            store.close()
        return seconds
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--profile", default="small")
    args = parser.parse_args()
    task = prepare("co2", horizons=HORIZONS)
    specs = variants(args.trials)
    base = in_process(specs, task, args.profile)
    one = on_ray(specs, task, args.profile, 1)
    two = on_ray(specs, task, args.profile, 2)
    per_hour = lambda s: 3600 * len(specs) / s
    print(f"{len(specs)} trials, profile {args.profile}, co2, horizons {HORIZONS}, 1 thread each")
    print(f"in-process     {base:7.1f} s  {per_hour(base):7.1f} trials/hour")
    print(f"Ray, 1 worker  {one:7.1f} s  {per_hour(one):7.1f} trials/hour  "
          f"overhead {100 * (one - base) / base:+.1f}% ({(one - base) / len(specs):.2f} s/trial)")
    print(f"Ray, 2 workers {two:7.1f} s  {per_hour(two):7.1f} trials/hour  "
          f"speed-up {one / two:.2f}x over 1 worker")


if __name__ == "__main__":
    main()
