"""Reuse of searched encoders by FSNet (issue 15): ETTh2, H = 24 and 48, cumulative test MSE /
MAE over the 15-month stream (label delay on), FSNet over three backbones:

(a) the TS2Vec encoder from scratch (the paper's setting): the ``ETTh2/H24/fsnet`` and
    ``ETTh2/H48/fsnet`` units of ``benchmarks/results/online_forecasting.json``;
(b) the ``ts2vec`` preset pretrained contrastively on the training split (profile ``small``,
    seed 0), then FSNet over it (:func:`nas.engine.forecast.train_and_online`);
(c) the best encoder of ``ctsnas search --downstream fsnet`` on ETTh2 (random strategy, 6
    trials planned, profile ``small``, trial timeout 1200 s, time budget 2400 trial-seconds;
    the search's objective is FSNet's cumulative MSE over the validation month), its test
    figures from the search's ``best_test.json``.

Reference rows from the search run: a static Ridge on the raw window, the last value, and the
best spec's architecture untrained.

    python benchmarks/online_reuse.py                 # runs what is missing, then the table
    python benchmarks/online_reuse.py --report        # the table from the JSON only

Resumable: (b) is kept in the JSON once computed; the search resumes its run directory
(``runs/online-reuse-ETTh2``). Output: ``benchmarks/results/online_reuse.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
OUT = RESULTS / "online_reuse.json"
RUN_DIR = ROOT / "runs" / "online-reuse-ETTh2"
HORIZONS = (24, 48)
CONFIG = {"data": "ETTh2", "downstream": "fsnet", "horizons": list(HORIZONS), "trials": 6,
          "profile": "small", "workers": 1, "cpus_per_trial": 1, "trial_timeout": 1200,
          "time_budget": 2400, "seed": 0}


def load() -> dict:
    return json.loads(OUT.read_text()) if OUT.exists() else {}


def save(results: dict) -> None:
    from nas.engine.results import write_json
    write_json(results, OUT)


def scratch() -> dict:
    units = json.loads((RESULTS / "online_forecasting.json").read_text())["units"]
    return {str(h): {k: units[f"ETTh2/H{h}/fsnet"][k] for k in ("mse", "mae")}
            for h in HORIZONS}


def pretrained(data_dir) -> dict:
    """(b): ``{"24": {"mse", "mae"}, "48": ...}`` on test, with the validation figures."""
    import search_spaces as ss
    from nas.engine.forecast import online_search_task, train_and_online

    task = online_search_task({**CONFIG, "data_dir": data_dir, "target": None,
                               "univariate": False})
    _, out = train_and_online(ss.preset("ts2vec"), task, HORIZONS, CONFIG["profile"],
                              seed=CONFIG["seed"], test=True)
    return {str(h): {"mse": r["test"]["mse"], "mae": r["test"]["mae"],
                     "val_mse": r["val"]["mse"]} for h, r in out["horizons"].items()}


def searched(data_dir) -> dict:
    """(c) and the reference rows, from the (resumed) search run."""
    from nas.engine.runner import search
    from nas.zeroshot.guidance import strategy_inputs

    given = {**CONFIG, **({"data_dir": data_dir} if data_dir else {})}
    summary = search(given, RUN_DIR, resume=True, progress=False, guidance=strategy_inputs)
    best = summary["leaderboard"][0]
    out = {"trial": best["trial"], "spec_hash": best["spec_hash"], "spec": best["spec"],
           "n_trials": summary["n_trials"], "n_failed": summary["n_failed"],
           "val_mse": best["val_mse"], "horizons": {}, "references": {}}
    for h, m in summary["best_test"].items():
        out["horizons"][str(h)] = {"mse": m["test"]["mse"], "mae": m["test"]["mae"]}
        for name, r in (m.get("references") or {}).items():
            out["references"].setdefault(name, {})[str(h)] = {"mse": r["mse"], "mae": r["mae"]}
    return out


def report(results: dict) -> str:
    rows = [("(a) TS2Vec from scratch", results.get("scratch")),
            ("(b) ts2vec pretrained (contrastive, train split)", results.get("pretrained"))]
    if "searched" in results:
        s = results["searched"]
        rows.append((f"(c) best searched encoder (trial {s['trial']}, {s['spec_hash']})",
                     s["horizons"]))
        rows += [(f"reference: {name.replace('_', ' ')}", by_h)
                 for name, by_h in s["references"].items()]
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
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    results = load()
    if not args.report:
        import torch
        torch.set_num_threads(1)
        results["scratch"] = scratch()
        save(results)
        if "pretrained" not in results:
            results["pretrained"] = pretrained(args.data_dir)
            save(results)
        results["searched"] = searched(args.data_dir)
        save(results)
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
