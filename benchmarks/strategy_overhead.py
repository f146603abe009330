"""Driver-side overhead of the search strategies: milliseconds per ask and per tell (guided:
K = 16 comparator-ranked mutations per child and fine-tuning every 8 results included) over
64 asynchronous trials with a synthetic objective, against the wall time of one real trial
(the ts2vec preset on co2 at profile smoke, the cheapest real trial). Writes
``benchmarks/results/strategy_overhead.json``.

    .venv/bin/python benchmarks/strategy_overhead.py
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np

import search_spaces as ss
from nas.engine.evaluate import prepare
from nas.engine.strategies import GuidedStrategy, make_strategy
from nas.engine.trial import run_trial
from nas.zeroshot.comparators import load_trained

TRIALS, WORKERS = 64, 2
OUT = Path(__file__).parent / "results" / "strategy_overhead.json"


def objective(spec: dict) -> float:
    enc = spec["Encoder"]
    return enc["layers"] / 10 + enc["hidden"] / 128 + 0.2 * len(spec["AugCell1"])


def timed_run(strategy) -> dict:
    """Asks as slots free, tells in a fixed pseudo-completion order; -> ms per ask / tell."""
    asks, tells, running, asked = [], [], [], 0
    while asked < TRIALS or running:
        while len(running) < WORKERS and asked < TRIALS:
            t = time.perf_counter()
            (h, spec), = strategy.ask(1)
            asks.append(time.perf_counter() - t)
            running.append((asked * 7 % 5 + asked, asked, h, spec))
            asked += 1
        running.sort()
        _, i, h, spec = running.pop(0)
        row = {"trial": i, "spec_hash": h, "status": "ok", "val_mse": objective(spec)}
        t = time.perf_counter()
        strategy.tell(spec, row)
        tells.append(time.perf_counter() - t)
    ms = lambda xs: {"mean": 1e3 * float(np.mean(xs)), "max": 1e3 * float(np.max(xs))}  # noqa: E731
    return {"ask_ms": ms(asks), "tell_ms": ms(tells),
            "per_trial_ms": 1e3 * (sum(asks) + sum(tells)) / TRIALS}


def main() -> None:
    model, _ = load_trained()
    feature = np.zeros(model.config["n_task_features"], dtype=np.float32)
    out = {}
    for name in ("random", "evolution", "tpe", "guided"):
        if name == "guided":
            strategy = GuidedStrategy(TRIALS, (model, feature), 0, False, k_mutations=16,
                                      finetune_every=8)
        else:
            strategy = make_strategy(name, TRIALS, 0, False)
        out[name] = timed_run(strategy)
        print(name, json.dumps(out[name]))
    task = prepare("co2", None, None, False, [4, 12])
    row = run_trial(0, ss.preset("ts2vec"), dataclasses.asdict(task), [4, 12], "smoke", 0)
    trial_ms = 1e3 * row["seconds"]
    worst = max(v["per_trial_ms"] for v in out.values())
    result = {"trials": TRIALS, "workers": WORKERS, "strategies": out,
              "reference_trial": {"spec": "ts2vec", "data": "co2", "profile": "smoke",
                                  "seconds": row["seconds"]},
              "worst_overhead_share": worst / trial_ms, "target_share": 0.05,
              "met": bool(worst / trial_ms < 0.05 and math.isfinite(worst))}
    OUT.write_text(json.dumps(result, indent=2))
    print(f"worst strategy overhead {worst:.1f} ms per trial = "
          f"{100 * worst / trial_ms:.2f}% of a {row['seconds']:.1f} s smoke trial -> {OUT}")


if __name__ == "__main__":
    main()
