"""Speed of one online step (issue 15 target: at most 30 ms on 2 cores; the FSNet code measured
29 ms here): predict + update with batch size 1 on ETTh2 (7 variables and the calendar
covariates in, lookback 60, H = 24), the TS2Vec backbone, after no warm-up (the warm-up does
not change a step's cost). Every measured sample is predicted and then updated on
(``label_delay=False``: with the delay, the first H samples of a stream have no label yet
and would make the mean look faster; the arithmetic of a step is the same).

For FSNet, NoMem and OGD, with 1 and 2 torch threads: ``STEPS`` stream samples after
``SKIP`` unmeasured ones, wall time per sample (median of ``REPEATS`` runs). Needs a quiet
machine: run nothing else.

    python benchmarks/online_step_speed.py     # prints the table, writes the JSON

Output: ``benchmarks/results/online_step_speed.json``.
"""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from downstream.online import protocol  # noqa: E402
from downstream.online.forecaster import OnlineForecaster, variant  # noqa: E402
from downstream.online.stream import Windows, online_optimizer, run_stream  # noqa: E402
from nas.engine.forecast import backbone, load_online_task  # noqa: E402
from nas.engine.results import write_json  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "online_step_speed.json"
HORIZON, STEPS, SKIP, REPEATS = 24, 300, 30, 3
TARGET_MS = 30.0


def step_ms(task, model: str, threads: int) -> float:
    """Median over REPEATS of the wall milliseconds per stream sample (SKIP samples first)."""
    torch.set_num_threads(threads)
    data = Windows(task.x, task.y, protocol.LOOKBACK, HORIZON)
    start = task.splits["test"][0]
    times = []
    for repeat in range(REPEATS):
        net, dim, _ = backbone(task.x.shape[1], "ts2vec", None, seed=repeat)
        torch.manual_seed(repeat)
        forecaster = OnlineForecaster(net, dim, task.y.shape[1], HORIZON, variant(model, None))
        optimizer = online_optimizer(forecaster)
        run_stream(forecaster, optimizer, data, (start, start + SKIP + HORIZON),
                   label_delay=False)
        result = run_stream(forecaster, optimizer, data,
                            (start + SKIP, start + SKIP + STEPS + HORIZON - 1), label_delay=False)
        times.append(result.seconds / result.n_samples * 1e3)
    return statistics.median(times)


def main() -> int:
    task = load_online_task("ETTh2", os.environ.get("CTSNAS_DATA_DIR"), HORIZON)
    rows = {}
    for model in ("fsnet", "nomem", "ogd"):
        for threads in (1, 2):
            rows[f"{model}/{threads}"] = round(step_ms(task, model, threads), 2)
            print(f"{model:6s} {threads} thread(s): {rows[f'{model}/{threads}']:.1f} ms per "
                  "step", flush=True)
    best = min(rows[f"fsnet/{t}"] for t in (1, 2))
    verdict = "met" if best <= TARGET_MS else "missed"
    print(f"FSNet online step: {best:.1f} ms at best; target {TARGET_MS:.0f} ms: {verdict}")
    write_json({"horizon": HORIZON, "lookback": protocol.LOOKBACK, "steps": STEPS,
                "repeats": REPEATS, "ms_per_step": rows, "target_ms": TARGET_MS,
                "fsnet_best_ms": best, "target": verdict,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "torch": torch.__version__,
                            "date": time.strftime("%Y-%m-%d")}}, OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
