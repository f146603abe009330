"""Online forecasting (issue 15): FSNet and its baselines on the FSNet protocol, beside the
published figures of FSNet (ICLR 2023) and OneNet (NeurIPS 2023).

Units (data, H, model), run in this order: ETTh2 at H = 24, 1, 48 for all six variants
(fsnet with the attention-weighted read, fsnet-index with the public code's read, nomem, ogd,
er, derpp), then ETTm1 at H = 24 for fsnet, nomem and ogd. Backbone: the TS2Vec encoder
(``--arch ts2vec``) from scratch, as in the paper; warm-up 6 epochs on 4 months, then the
15-month test stream with batch size 1 and the label delay (no update before a label is
complete). ``MODEL/immediate`` units (ETTh2 H = 24, fsnet and ogd) update right after each
prediction, as the FSNet code does, to show what its H-1-step look-ahead is worth. The report
adds two reference rows computed on the same samples: a static Ridge on the raw window and
the last value; its speed column is process CPU time per stream sample, warm-up included
(robust to other work sharing the cores or a paused process).

    python benchmarks/online_forecasting.py                      # all units, then the report
    python benchmarks/online_forecasting.py --shard 1/2          # two processes side by side
    python benchmarks/online_forecasting.py --report             # tables and PNG only
    python benchmarks/online_forecasting.py --dry-run --out /tmp/of.json   # co2, minutes

Resume: re-run the same command; a unit already in the JSON is skipped, each unit is written
(atomically, under a file lock) as soon as it is done. ``cpu_seconds`` is the process CPU time
of a unit (robust to a paused process), ``stream_seconds`` wall time. Outputs:
``benchmarks/results/online_forecasting.{json,md}`` and ``online_forecasting_curves.png``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.unitstore import arguments, load, record, run_pending, write_report  # noqa: E402,E501
from nas.engine.forecast import run_forecast  # noqa: E402
from nas.engine.results import write_json  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SIX = ("fsnet", "fsnet-index", "nomem", "ogd", "er", "derpp")
UNITS = ([("ETTh2", h, m) for h in (24, 1, 48) for m in SIX]
         + [("ETTh2", 24, m + "/immediate") for m in ("fsnet", "ogd")]
         + [("ETTm1", 24, m) for m in ("fsnet", "nomem", "ogd")])
DRY_UNITS = [("co2", 4, m) for m in ("fsnet", "ogd")]
#: Published MSE at H = 1 / 24 / 48 (FSNet paper Table 2; OneNet paper Table 2).
ANCHORS = {
    "ETTh2": {"FSNet (paper, index read)": (0.466, 0.687, 0.846),
              "OnlineTCN (OGD)": (0.502, 0.830, 1.183), "ER": (0.508, 0.808, 1.136),
              "DER++": (0.508, 0.828, 1.157), "OneNet": (0.380, 0.532, 0.609)},
    "ETTm1": {"FSNet (paper, index read)": (0.085, 0.115, 0.127),
              "ER": (0.086, 0.202, 0.220), "DER++": (0.083, 0.196, 0.208),
              "OneNet": (0.082, 0.098, 0.108)},
}


def key(unit) -> str:
    return f"{unit[0]}/H{unit[1]}/{unit[2]}"


def run_unit(unit, epochs: int, path: Path) -> None:
    data, horizon, model = unit
    model, _, mode = model.partition("/")
    start, cpu = time.perf_counter(), time.process_time()

    def progress(done, total):
        print(f"  {key(unit)}: {done}/{total} samples, {time.perf_counter() - start:.0f} s",
              flush=True)

    out = run_forecast(data, model, horizon, arch="ts2vec", epochs=epochs, progress=progress,
                       label_delay=mode != "immediate")
    out.update(cpu_seconds=time.process_time() - cpu, wall_seconds=time.perf_counter() - start,
               torch_threads=torch.get_num_threads())
    record(path, key(unit), out)
    print(f"{key(unit)}: MSE {out['mse']:.4f} MAE {out['mae']:.4f} over {out['n_samples']} "
          f"samples, {out['seconds_per_sample'] * 1e3:.1f} ms/sample, {out['triggers']} "
          f"memory recalls", flush=True)


def references(path: Path) -> dict:
    """Static raw Ridge and last-value rows per dataset and horizon (seconds; cached)."""
    from downstream.online.protocol import reference_rows
    from nas.engine.forecast import load_online_task

    results = load(path)
    refs = results.setdefault("references", {})
    for k in results["units"]:
        data, h = k.split("/")[0], int(k.split("/")[1][1:])
        if f"{data}/H{h}" not in refs:
            refs[f"{data}/H{h}"] = reference_rows(load_online_task(data, None, h), h)
    with FileLock(str(path) + ".lock"):
        fresh = load(path)
        fresh["references"] = refs
        for row in fresh["units"].values():  # 50 points, 4 digits: a small file
            keep = row["curve"][::max(1, len(row["curve"]) // 50)][:49] + row["curve"][-1:]
            row["curve"] = [[s, float(f"{v:.4g}")] for s, v in keep]
        write_json(fresh, path)
    return refs


def report(path: Path) -> str:
    refs = references(path)
    units = load(path)["units"]
    lines = []
    for data in ("ETTh2", "ETTm1", "co2"):
        order = list(SIX) + [m + "/immediate" for m in SIX]
        names = {k.split("/", 2)[2] for k in units if k.startswith(data + "/")}
        rows = {m: {} for m in sorted(names, key=lambda m: order.index(m) if m in order else 99)}
        if not rows:
            continue
        for k, r in units.items():
            if k.startswith(data + "/"):
                rows[k.split("/", 2)[2]][r["horizon"]] = r
        for name in ("raw_ridge", "last_value"):
            rows[f"reference: {name.replace('_', ' ')}"] = {
                int(k.split("/H")[1]): v[name]
                for k, v in refs.items() if k.startswith(data + "/")}
        hs = sorted({h for by_h in rows.values() for h in by_h} | ({1, 24, 48} if data in
                                                                    ANCHORS else set()))
        lines += [f"\n### {data}: cumulative MSE / MAE over the test stream (ours, label "
                  "delay on)\n", "| model | " + " | ".join(f"H={h}" for h in hs)
                  + " | CPU ms/sample |", "|---|" + "---|" * (len(hs) + 1)]
        for model, by_h in rows.items():
            cells = [f"{by_h[h]['mse']:.3f} / {by_h[h]['mae']:.3f}" if h in by_h else "-"
                     for h in hs]
            speed = max(r.get("cpu_seconds", 0) / r["n_samples"] for r in by_h.values()) * 1e3
            speed = f"{speed:.0f}" if speed else ""
            label = (model.replace("/immediate", ", immediate updates (FSNet code)")
                     if "/" in model else model)
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {speed} |")
        for name, figs in ANCHORS.get(data, {}).items():
            lines.append(f"| published: {name} | " + " | ".join(f"{v:.3f}" for v in figs)
                         + " | |")
    return "\n".join(lines)


def plot(path: Path, png: Path) -> None:
    from downstream.online import plot_curves

    units = load(path)["units"]
    curves = {k.split("/", 2)[2]: r["curve"] for k, r in units.items()
              if k.startswith("ETTh2/H24/")}
    if curves:
        plot_curves(curves, png, "ETTh2 H=24: cumulative MSE over the 15-month test stream")


def main() -> None:
    args = arguments(__doc__, RESULTS / "online_forecasting.json")
    epochs = 1 if args.dry_run else 6
    path = run_pending(args, DRY_UNITS if args.dry_run else UNITS, key,
                       lambda unit: run_unit(unit, epochs, Path(args.out)))
    write_report(path, report(path))
    plot(path, path.with_name(path.stem + "_curves.png"))


if __name__ == "__main__":
    main()
