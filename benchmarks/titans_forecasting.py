"""Titans (issue 16): the memory-as-context forecaster on the long-horizon protocol (lookback
96, standardised MSE / MAE), beside the Titans paper's table, our raw-lookback Ridge and our
RLinear-style Ridge (:func:`downstream.longterm.rlinear_ridge`).

Units (data, H, input), run in this order:
  ETTh1 at H = 96, 192, 336, 720 on raw values (modes A, B and C at 96 and 336, A otherwise);
  ETTh1 at the four horizons, modes A, B and C, raw values, with the linear skip
    (``raw+skip``: ``ctsnas forecast --model titans --linear-skip``, RLinear as a residual
    path, the head starting at zero);
  ETTh1 at the four horizons, mode A, on the frozen causal representations of
    ``ts2vec``: the ts2vec preset trained contrastively on ETTh1's training split
    (``ctsnas train --arch ts2vec --profile small``), and
    ``searched``: the best encoder of a probe search on ETTh1
    (``ctsnas search --trials 12 --profile small --trial-timeout 600``, horizons
    96,192,336,720); when its best spec is the ts2vec preset, the two encoders differ only by
    training noise;
  ETTm1 at H = 96, mode A, raw values.
Each unit trains one model (at most 10 epochs, best validation epoch kept) and records its
``cpu_seconds`` (process time), seconds per epoch and per test step.

    python benchmarks/titans_forecasting.py                # all units, then the report
    python benchmarks/titans_forecasting.py --shard 1/2    # two processes side by side
    python benchmarks/titans_forecasting.py --report       # table only
    python benchmarks/titans_forecasting.py --dry-run --out /tmp/t.json   # co2, minutes

Resume: re-run the same command; a unit in the JSON is skipped, each is written (under a file
lock) as soon as it is done. The encoders live in ``runs/titans-bench/`` (rebuilt, with the
same seeds, when absent). Outputs: ``benchmarks/results/titans_forecasting.{json,md}`` and
``titans_stream_<data>_H<h>[_skip].png`` (cumulative test MSE of modes A, B, C in time
order).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.unitstore import arguments, load, record, run_pending, write_report  # noqa: E402,E501
from downstream.longterm import REFERENCE_NAMES  # noqa: E402
from nas.engine.titans import run_titans  # noqa: E402
from search_spaces import learner  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "runs" / "titans-bench"
HORIZONS = (96, 192, 336, 720)
UNITS = ([("ETTh1", h, "raw") for h in HORIZONS]
         + [("ETTh1", h, "raw+skip") for h in HORIZONS]
         + [("ETTh1", h, enc) for enc in ("ts2vec", "searched") for h in HORIZONS]
         + [("ETTm1", 96, "raw")])
DRY_UNITS = [("co2", 24, "raw"), ("co2", 24, "ts2vec"), ("co2", 24, "raw+skip")]
STREAM_HORIZONS = (96, 336)
#: Published MSE / MAE at H = 96 / 192 / 336 / 720 and their average (Titans paper, Table on
#: long-term forecasting, lookback 96; the same table's baselines).
ANCHORS = {"Titans (paper, neural memory in Simba)": 0.420, "RLinear": 0.446,
           "iTransformer": 0.454, "DLinear": 0.456, "PatchTST": 0.469}


def key(unit) -> str:
    return f"{unit[0]}/H{unit[1]}/{unit[2]}"


def untrained_copy(trained: learner.ContrastiveLearner) -> learner.ContrastiveLearner:
    """``trained``'s spec at its random initialisation: the same seed and input scaling."""
    fresh = learner.ContrastiveLearner(trained.spec, trained.n_features, trained.seed)
    fresh.scaling = trained.scaling
    return fresh


def encoder_path(data: str, which: str, dry: bool) -> str:
    """The saved encoder of ``which`` for ``data``, built if absent: ``ts2vec`` (the preset
    trained), ``searched`` (the probe search's best) or ``untrained`` (the searched spec at
    its random initialisation, the same seed and input scaling: the reference that tells
    what the contrastive training adds)."""
    if which == "untrained":
        path = WORK / f"untrained-{data}.pt"
        if not path.exists():
            untrained_copy(learner.ContrastiveLearner.load(
                encoder_path(data, "searched", dry))).save(path)
        return str(path)
    profile = "smoke" if dry else "small"
    cli = [sys.executable, "-m", "nas.cli", "--debug"]
    if which == "ts2vec":
        path = WORK / f"ts2vec-{data}.pt"
        if not path.exists():
            subprocess.run(cli + ["train", "--data", data, "--arch", "ts2vec", "--profile",
                                  profile, "--seed", "0", "--out", str(path), "--horizons",
                                  "24" if dry else "96"], check=True, cwd=ROOT)
        return str(path)
    run = WORK / f"search-{data}"
    if not (run / "best_encoder.pt").exists():
        subprocess.run(cli + ["search", "--data", data, "--trials", "3" if dry else "12",
                              "--profile", profile, "--horizons",
                              "24" if dry else ",".join(map(str, HORIZONS)), "--workers", "1",
                              "--cpus-per-trial", "1", "--seed", "0", "--run-dir", str(run),
                              "--trial-timeout", "600",
                              "--quiet"] + (["--resume"] if run.exists() else []),
                       check=True, cwd=ROOT)
    return str(run / "best_encoder.pt")


def run_unit(unit, path: Path, dry: bool) -> None:
    data, horizon, inputs = unit
    WORK.mkdir(parents=True, exist_ok=True)
    encoder = None if inputs.startswith("raw") else encoder_path(data, inputs, dry)
    stream = inputs == "raw+skip" or (inputs == "raw" and (horizon in STREAM_HORIZONS or dry))
    modes = ("A", "B", "C") if stream else ("A",)
    start, cpu = time.perf_counter(), time.process_time()
    out = run_titans(data, horizon, modes, data_dir=os.environ.get("CTSNAS_DATA_DIR"),
                     encoder=encoder, epochs=1 if dry else 10,
                     linear_skip=inputs.endswith("+skip"))
    out.update(cpu_seconds=time.process_time() - cpu, wall_seconds=time.perf_counter() - start,
               torch_threads=torch.get_num_threads())
    record(path, key(unit), out)
    cells = ", ".join(f"{m} {r['mse']:.4f}" for m, r in out["modes"].items())
    print(f"{key(unit)}: MSE {cells}; raw Ridge {out['references']['raw_ridge']['mse']:.4f}; "
          f"{out['train']['epoch_seconds']:.0f} s/epoch", flush=True)


def report(path: Path) -> str:
    units = load(path)["units"]
    lines = []
    for data in ("ETTh1", "ETTm1", "co2"):
        rows = {}
        for k, r in units.items():
            if k.startswith(data + "/"):
                skip = ", linear skip" if r["config"].get("linear_skip") else ""
                for m, row in r["modes"].items():
                    rows.setdefault(f"Titans, {r['input']}{skip}, mode {m}", {})[r["horizon"]] = row
                for ref, name in REFERENCE_NAMES.items():
                    if ref in r["references"]:
                        rows.setdefault(f"reference: {name} (ours)", {})[r["horizon"]] = (
                            r["references"][ref])
        if not rows:
            continue
        hs = sorted({h for by_h in rows.values() for h in by_h})
        lines += [f"\n### {data}: test MSE / MAE, lookback 96 (standardised)\n",
                  "| model | " + " | ".join(f"H={h}" for h in hs) + " | average MSE |",
                  "|---|" + "---|" * (len(hs) + 1)]
        for name, by_h in sorted(rows.items(), key=lambda kv: kv[0].startswith("reference")):
            cells = [f"{by_h[h]['mse']:.3f} / {by_h[h]['mae']:.3f}" if h in by_h else "-"
                     for h in hs]
            avg = (f"{sum(by_h[h]['mse'] for h in hs) / len(hs):.3f}"
                   if all(h in by_h for h in hs) and len(hs) == 4 else "-")
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {avg} |")
        if data == "ETTh1":
            for name, avg in ANCHORS.items():
                lines.append(f"| published: {name} | " + " | ".join("" for _ in hs)
                             + f" | {avg:.3f} |")
        lines += ["", "| unit | epochs | s/epoch | ms per test step (A / B / C) | CPU s |",
                  "|---|---|---|---|---|"]
        for k, r in units.items():
            if k.startswith(data + "/"):
                steps = " / ".join(f"{row['seconds_per_step'] * 1e3:.1f}"
                                   for row in r["modes"].values())
                lines.append(f"| {k} | {len(r['train']['val_mse'])} | "
                             f"{r['train']['epoch_seconds']:.0f} | {steps} | "
                             f"{r.get('cpu_seconds', 0):.0f} |")
    return "\n".join(lines)


def plot_streams(path: Path) -> list:
    """One PNG per unit scored in several modes: the cumulative test MSE of each mode along
    the time-ordered test stream, next to the JSON (``titans_stream_<data>_H<h>.png``, with
    ``_skip`` for the linear-skip units)."""
    from downstream.online import plot_curves

    written = []
    for k, r in load(path)["units"].items():
        if len(r["modes"]) > 1:
            skip = r["config"].get("linear_skip")
            png = path.with_name(f"titans_stream_{r['data']}_H{r['horizon']}"
                                 f"{'_skip' if skip else ''}.png")
            plot_curves({f"mode {m}": row["curve"] for m, row in r["modes"].items()}, png,
                        f"{r['data']} H={r['horizon']}: Titans{' + linear skip' if skip else ''}"
                        ", cumulative test MSE in time order")
            written.append(png)
    return written


def main() -> None:
    args = arguments(__doc__, RESULTS / "titans_forecasting.json")
    path = run_pending(args, DRY_UNITS if args.dry_run else UNITS, key,
                       lambda unit: run_unit(unit, Path(args.out), args.dry_run))
    write_report(path, report(path))
    for png in plot_streams(path):
        print(f"stream curve: {png}")


if __name__ == "__main__":
    main()
