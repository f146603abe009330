"""Time-LLM ablation (issue 17) on ETTh1, lookback 96, H = 96 / 192 / 336 / 720, 3 seeds:
baseline, +TAPR, +GRA-M, +both, no-LM (one attention layer instead of the language model),
+both over the best searched encoder and, at H = 96 only, +both over the same spec untrained
(random initialisation: what the contrastive training adds). The language model is the
project's small GPT-2 with random weights (built under runs/llm/); Time-LLM's published
figures used LLaMA-7B and lookback 512 and are not comparable. The table reports mean and sd
over seeds beside DLinear's published 0.456 average (lookback 96) and our raw-lookback Ridge.

    python benchmarks/timellm_ablation.py                 # all units, then the report
    python benchmarks/timellm_ablation.py --shard 1/2     # two processes side by side
    python benchmarks/timellm_ablation.py --report        # table only
    python benchmarks/timellm_ablation.py --dry-run --out /tmp/t.json   # co2, 1 epoch

Resume: re-run the same command; finished units are skipped, a unit in progress resumes from
its checkpoint (runs/timellm/). The searched encoder comes from
``benchmarks/titans_forecasting.py``'s probe search on ETTh1 (runs/titans-bench/, rebuilt with
the same seed when absent). Outputs: ``benchmarks/results/timellm_ablation.{json,md}``.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.titans_forecasting import encoder_path  # noqa: E402
from downstream.longterm import REFERENCE_NAMES  # noqa: E402
from benchmarks.unitstore import arguments, load, record, run_pending, write_report  # noqa: E402,E501
from nas.engine.timellm import run_timellm  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
HORIZONS = (96, 192, 336, 720)
SEEDS = (0, 1, 2)
#: variant -> (tapr, gram, llm, encoder)
VARIANTS = {"baseline": (False, False, None, None), "+tapr": (True, False, None, None),
            "+gram": (False, True, None, None), "+both": (True, True, None, None),
            "no-lm": (False, False, "none", None), "+both over the searched encoder":
            (True, True, None, "searched"), "+both over the untrained searched encoder":
            (True, True, None, "untrained")}
#: The reference variants, run at H = 96 only.
REFERENCE_VARIANTS = ("+both over the untrained searched encoder",)
#: Horizon-major: H = 96 over all seeds and variants first, so the spread is known early.
UNITS = [(v, h, s) for h in HORIZONS for s in SEEDS for v in VARIANTS
         if h == HORIZONS[0] or v not in REFERENCE_VARIANTS]
DRY_UNITS = [(v, 24, 0) for v in ("baseline", "+tapr", "no-lm")]
EPOCHS = 5
#: DLinear on ETTh1 at lookback 96, test MSE per H (iTransformer paper, Liu et al. ICLR 2024,
#: full long-term forecasting results table; average 0.456).
DLINEAR = {96: 0.386, 192: 0.437, 336: 0.481, 720: 0.519}
DLINEAR_AVERAGE = 0.456


def key(unit) -> str:
    return f"{unit[0]}/H{unit[1]}/seed{unit[2]}"


def run_unit(unit, path: Path, dry: bool) -> None:
    variant, horizon, seed = unit
    tapr, gram, llm, encoder = VARIANTS[variant]
    data = "co2" if dry else "ETTh1"
    if encoder is not None:
        encoder = encoder_path(data, encoder, dry)
    start, cpu = time.perf_counter(), time.process_time()
    out = run_timellm(data, horizon, os.environ.get("CTSNAS_DATA_DIR"), tapr, gram, llm,
                      encoder, seed, 1 if dry else EPOCHS)
    out.update(cpu_seconds=time.process_time() - cpu, wall_seconds=time.perf_counter() - start,
               torch_threads=torch.get_num_threads())
    record(path, key(unit), out)
    print(f"{key(unit)}: test MSE {out['test']['mse']:.4f}, raw Ridge "
          f"{out['references']['raw_ridge']['mse']:.4f}", flush=True)


def report(path: Path) -> str:
    units = load(path)["units"]
    by = {}
    for k, r in units.items():
        variant, h, _ = k.rsplit("/", 2)
        by.setdefault(variant, {}).setdefault(int(h[1:]), []).append(r)
    if not by:
        return ""
    hs = sorted({h for v in by.values() for h in v})
    lines = ["\n### Test MSE, mean ± sample sd (ddof 1) over seeds (n seeds), lookback 96, "
             "standardised\n",
             "| variant | " + " | ".join(f"H={h}" for h in hs) + " | average |",
             "|---|" + "---|" * (len(hs) + 1)]
    for variant in VARIANTS:
        if variant not in by:
            continue
        cells, means = [], []
        for h in hs:
            runs = [r["test"]["mse"] for r in by[variant].get(h, [])]
            if runs:
                means.append(np.mean(runs))
                sd = f"{np.std(runs, ddof=1):.3f}" if len(runs) > 1 else "-"
                cells.append(f"{np.mean(runs):.3f} ± {sd} ({len(runs)})")
            else:
                cells.append("-")
        avg = f"{np.mean(means):.3f}" if len(means) == len(HORIZONS) else "-"
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {avg} |")
    lines += _reference_lines(by, hs)
    lines.append("| published: DLinear (lookback 96) | "
                 + " | ".join(f"{DLINEAR[h]:.3f}" for h in hs) + f" | {DLINEAR_AVERAGE:.3f} |")
    return "\n".join(lines + _seed_lines(units, hs) + _contribution_lines(units, hs))


def _seed_lines(units: dict, hs: list, seed: int = 0) -> list:
    """Every variant's test MSE with one ``seed`` at each horizon and, once all four are in,
    their average: the one figure comparable with DLinear's published average while the
    other seeds are still running."""
    lines = [f"\n### Seed {seed} at every horizon: test MSE and average over H\n",
             "| variant | " + " | ".join(f"H={h}" for h in hs) + " | average |",
             "|---|" + "---|" * (len(hs) + 1)]
    for variant in VARIANTS:
        mse = {h: units[k]["test"]["mse"] for h in hs
               if (k := f"{variant}/H{h}/seed{seed}") in units}
        if mse:
            avg = f"{np.mean(list(mse.values())):.3f}" if len(mse) == len(HORIZONS) else "-"
            lines.append(f"| {variant} | " + " | ".join(
                f"{mse[h]:.3f}" if h in mse else "-" for h in hs) + f" | {avg} |")
    return lines


def _contribution_lines(units: dict, hs: list) -> list:
    """Each variant's test MSE minus the baseline's of the same seed and horizon (< 0: the
    variant is better): mean ± sample sd of the paired differences (n pairs)."""
    lines = ["\n### Against the baseline, paired by seed: variant minus baseline test MSE, "
             "mean ± sample sd (n pairs); < 0: better\n",
             "| variant | " + " | ".join(f"H={h}" for h in hs) + " |",
             "|---|" + "---|" * len(hs)]
    for variant in VARIANTS:
        if variant == "baseline":
            continue
        cells = []
        for h in hs:
            pairs = [units[k]["test"]["mse"] - units[f"baseline/H{h}/seed{s}"]["test"]["mse"]
                     for s in SEEDS if (k := f"{variant}/H{h}/seed{s}") in units
                     and f"baseline/H{h}/seed{s}" in units]
            sd = f"{np.std(pairs, ddof=1):.3f}" if len(pairs) > 1 else "-"
            cells.append(f"{np.mean(pairs):+.3f} ± {sd} ({len(pairs)})" if pairs else "-")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return lines


def _reference_lines(by: dict, hs: list) -> list:
    """The reference rows (raw-lookback Ridge, RLinear-style Ridge) per horizon, from any unit
    of that horizon that holds them."""
    lines = []
    for ref, name in REFERENCE_NAMES.items():
        mse = {h: r["references"][ref]["mse"] for v in by.values() for h, rows in v.items()
               for r in rows if ref in r["references"]}
        if mse:
            avg = (f"{np.mean([mse[h] for h in hs]):.3f}" if len(mse) == len(HORIZONS)
                   else "-")
            lines.append(f"| reference: {name} (ours) | "
                         + " | ".join(f"{mse[h]:.3f}" if h in mse else "-" for h in hs)
                         + f" | {avg} |")
    return lines


def main() -> None:
    args = arguments(__doc__, RESULTS / "timellm_ablation.json")
    os.chdir(ROOT)  # the default language model and checkpoints live under ROOT/runs
    path = run_pending(args, DRY_UNITS if args.dry_run else UNITS, key,
                       lambda unit: run_unit(unit, Path(args.out), args.dry_run))
    write_report(path, report(path))


if __name__ == "__main__":
    main()
