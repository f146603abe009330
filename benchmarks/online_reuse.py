"""Reuse of searched encoders by FSNet (issue 15): ETTh2, H = 24 and 48, cumulative test MSE /
MAE over the 15-month stream (label delay on), FSNet over three backbones:

(a) the TS2Vec encoder from scratch (the paper's setting): the ``ETTh2/H24/fsnet`` and
    ``ETTh2/H48/fsnet`` units of ``benchmarks/results/online_forecasting.json``;
(b) the ``ts2vec`` preset pretrained contrastively on the training split (profile ``small``,
    seed 0), then FSNet over it (:func:`nas.engine.forecast.train_and_online`);
(c) the best encoder of a ``--downstream fsnet`` search on ETTh2 (random strategy, profile
    ``small``, seed 0; its objective is FSNet's cumulative MSE over the validation month):
    the best trial of the run directory, retrained with its seed (the same validation MSE),
    then its test streams. The search itself is the command line's:

        ctsnas search --data ETTh2 --downstream fsnet --horizons 24,48 --trials 6 \
            --profile small --workers 1 --trial-timeout 1200 --run-dir runs/online-reuse-ETTh2

Reference rows: a static Ridge on the raw window and the last value (from
``online_forecasting.json``, the same samples), and (c)'s architecture untrained as the FSNet
backbone (``random_encoder``).

    python benchmarks/online_reuse.py                 # runs what is missing, then the table
    python benchmarks/online_reuse.py --only untrained   # one part (pretrained, searched, untrained)
    python benchmarks/online_reuse.py --report        # the table from the JSON only

Resumable: each part is kept in the JSON once computed. Output:
``benchmarks/results/online_reuse.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
OUT = RESULTS / "online_reuse.json"
RUN_DIR = ROOT / "runs" / "online-reuse-ETTh2"
HORIZONS = (24, 48)
CONFIG = {"data": "ETTh2", "downstream": "fsnet", "horizons": list(HORIZONS), "profile": "small",
          "seed": 0}
PARTS = ("pretrained", "searched", "untrained")


def load() -> dict:
    return json.loads(OUT.read_text()) if OUT.exists() else {}


def save(results: dict) -> None:
    from nas.engine.results import write_json
    write_json(results, OUT)


def scratch() -> dict:
    units = json.loads((RESULTS / "online_forecasting.json").read_text())["units"]
    return {str(h): {k: units[f"ETTh2/H{h}/fsnet"][k] for k in ("mse", "mae")}
            for h in HORIZONS}


def _task(data_dir):
    from nas.engine.forecast import online_search_task
    return online_search_task({**CONFIG, "data_dir": data_dir})


def _test_rows(out: dict) -> dict:
    return {str(h): {"mse": r["test"]["mse"], "mae": r["test"]["mae"],
                     "val_mse": r["val"]["mse"]} for h, r in out["horizons"].items()}


def _best_trial() -> dict:
    from nas.engine.results import leaderboard
    from nas.engine.store import RunStore

    store = RunStore(RUN_DIR, readonly=True)  # raises ValueError when there is no run
    try:
        best = leaderboard(store.trials())[0]
    finally:
        store.close()
    if best["status"] != "ok":
        raise SystemExit(f"no successful trial in {RUN_DIR}; run the search first")
    return best


def pretrained(data_dir) -> dict:
    """(b): ``{"24": {"mse", "mae", "val_mse"}, "48": ...}``."""
    import search_spaces as ss
    from nas.engine.forecast import train_and_online

    _, out = train_and_online(ss.preset("ts2vec"), _task(data_dir), HORIZONS,
                              CONFIG["profile"], seed=CONFIG["seed"], test=True)
    return _test_rows(out)


def searched(data_dir) -> dict:
    """(c): the search's best trial retrained with its seed, its test streams."""
    from nas.engine.forecast import train_and_online

    best = _best_trial()
    _, out = train_and_online(best["spec"], _task(data_dir), HORIZONS, CONFIG["profile"],
                              seed=CONFIG["seed"], test=True)
    return {"trial": best["trial"], "spec_hash": best["spec_hash"], "spec": best["spec"],
            "search_val_mse": best["val_mse"], "val_mse": out["val_mse"],
            "horizons": _test_rows(out)}


def untrained(data_dir) -> dict:
    """(c)'s architecture at its random initialisation (seed 0) as the FSNet backbone."""
    from nas.engine.forecast import random_online

    best = _best_trial()
    out = random_online(best["spec"], _task(data_dir), HORIZONS, CONFIG["seed"], test=True)
    return {"spec_hash": best["spec_hash"], "horizons": _test_rows(out)}


def references() -> dict:
    refs = json.loads((RESULTS / "online_forecasting.json").read_text())["references"]
    return {name: {str(h): refs[f"ETTh2/H{h}"][key] for h in HORIZONS}
            for name, key in (("raw_lookback", "raw_ridge"), ("last_value", "last_value"))}


def report(results: dict) -> str:
    rows = [("(a) TS2Vec from scratch", results.get("scratch")),
            ("(b) ts2vec pretrained (contrastive, train split)", results.get("pretrained"))]
    if "searched" in results:
        s = results["searched"]
        rows.append((f"(c) best searched encoder (trial {s['trial']}, {s['spec_hash']})",
                     s["horizons"]))
    if "untrained" in results:
        rows.append(("reference: (c)'s architecture untrained", results["untrained"]["horizons"]))
    rows += [(f"reference: {name.replace('_', ' ')}", by_h)
             for name, by_h in results.get("references", {}).items()]
    lines = ["| FSNet backbone | H=24 MSE / MAE | H=48 MSE / MAE |", "|---|---|---|"]
    for label, by_h in rows:
        if by_h:
            lines.append(f"| {label} | " + " | ".join(
                f"{by_h[str(h)]['mse']:.3f} / {by_h[str(h)]['mae']:.3f}" for h in HORIZONS)
                + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--only", choices=PARTS, default=None)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    if not args.report:
        import torch
        torch.set_num_threads(1)
        for part in [args.only] if args.only else PARTS:
            if part not in load():
                value = globals()[part](args.data_dir)
                with FileLock(str(OUT) + ".lock"):  # parts may run side by side
                    save({**load(), part: value})
    with FileLock(str(OUT) + ".lock"):
        results = {**load(), "scratch": scratch(), "references": references()}
        save(results)
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
