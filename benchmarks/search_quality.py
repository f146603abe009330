"""Search quality on ETTh1 univariate (issue 13): equal-compute search arms, then the best spec
retrained at paper scale (seeds 0, 1, 2) against the ts2vec preset and the literature.

Phase 1: ``ctsnas search`` per arm with the same ``--time-budget``, validation only: ``random``
(single fidelity), ``evolution`` and ``guided`` (inside ASHA, rungs 25,75,200, eta 3); best
validation MSE so far against wall-clock seconds. Phase 2: the best spec over the arms, trained
with ``--profile paper`` per seed, test split probed with ``repr`` and ``repr+raw``. Phase 3:
means, references, targets; markdown tables to stdout and next to the JSON (``.md``).

    python benchmarks/search_quality.py                                # all phases, 600 s per arm
    python benchmarks/search_quality.py --phase 1 --budget-seconds 3600 --arms random,evolution
    python benchmarks/search_quality.py --phase 2 --seeds 0,1,2
    python benchmarks/search_quality.py --phase 3                      # tables from the JSON
    python benchmarks/search_quality.py --dry-run --out /tmp/sq.json   # co2, smoke, minutes

Resume: re-run the same command. An arm recorded as done at this budget is skipped, any other
is continued with ``ctsnas search --resume`` in RUNS/ARM (a larger budget extends it); a seed
already in the JSON is skipped (each written atomically as soon as it is done). Outputs:
``benchmarks/results/etth1_search.{json,md}``, ``etth1_search_curves.png``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ASHA = ["--fidelity", "asha", "--rungs", "25,75,200", "--eta", "3"]
ARMS = {"random": ["--strategy", "random", "--fidelity", "none"],
        "evolution": ["--strategy", "evolution", "--population", "8", "--sample-size", "3",
                      *ASHA],
        "guided": ["--strategy", "guided", "--population", "8", "--sample-size", "3", *ASHA]}
FEATURES = ("repr", "repr+raw")
H5 = (24, 48, 168, 336, 720)
#: Test MSE, ETTh1 univariate. ts2vec preset (3-seed mean) and TS2Vec paper: docs/results.md,
#: "ETTh1 paper-scale check"; AutoTCL (ICLR 2024), CoST, InfoTS: the figures quoted in issue 13;
#: raw Ridge measured before here (`ctsnas evaluate`, seed 0).
LITERATURE = {"ts2vec preset": (0.0400, 0.0636, 0.1290, 0.1550, 0.1782),
              "TS2Vec paper": (0.039, 0.062, 0.134, 0.154, 0.163),
              "AutoTCL": (0.037, 0.054, 0.078, 0.093, 0.120),
              "CoST": (0.040, 0.060, 0.097, 0.112, 0.148),
              "InfoTS": (0.039, 0.056, 0.100, 0.117, 0.141),
              "raw Ridge (measured before)": (0.027, 0.041, 0.073, 0.096, 0.168)}


def settings(args) -> dict:
    """The run's configuration (what the results JSON records under ``config``)."""
    real = {"data": "ETTh1", "target": "OT", "horizons": list(H5), "profile": "small",
            "final_profile": "paper", "rungs": "25,75,200", "budget_seconds": args.budget_seconds,
            "seeds": [int(s) for s in args.seeds.split(",")]}
    dry = {"data": "co2", "target": None, "horizons": [4, 12], "profile": "smoke",
           "final_profile": "smoke", "rungs": "1,2,4", "budget_seconds": 20, "seeds": [0]}
    out = Path(args.out) if args.out else (
        Path(tempfile.mkdtemp(prefix="search_quality_")) / "sq.json" if args.dry_run
        else RESULTS / "etth1_search.json")
    if args.dry_run and out.resolve().parent == RESULTS.resolve():
        raise SystemExit("--dry-run never writes to benchmarks/results; give another --out")
    runs = args.runs or (out.parent / (out.stem + "_runs") if args.dry_run
                         else ROOT / "runs" / "search_quality")
    return {**(dry if args.dry_run else real), "dry_run": args.dry_run, "workers": 2,
            "trial_timeout": 600, "trials": 10000, "search_seed": 0, "univariate": True,
            "data_dir": str(Path(args.data_dir).resolve()), "runs": str(Path(runs).resolve()),
            "arms": args.arms.split(","), "out": str(out)}


def sig5(x):
    return None if x is None else float(f"{x:.5g}")


def save_results(results: dict, path: Path) -> None:
    """Atomic write: a temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(results, fh, indent=2, sort_keys=True)
    os.replace(tmp, path)


def search_command(cfg: dict, arm: str, run_dir: Path) -> list:
    flags = [a.replace("25,75,200", cfg["rungs"]) for a in ARMS[arm]]
    cmd = [sys.executable, "-m", "nas.cli", "search", "--data", cfg["data"], "--data-dir",
           cfg["data_dir"], "--univariate", "--horizons", ",".join(map(str, cfg["horizons"])),
           "--profile", cfg["profile"], "--workers", str(cfg["workers"]), "--trial-timeout",
           str(cfg["trial_timeout"]), "--trials", str(cfg["trials"]), "--time-budget",
           str(cfg["budget_seconds"]), "--seed", str(cfg["search_seed"]), "--run-dir",
           str(run_dir), "--quiet", "--json", *flags]
    if cfg["target"]:
        cmd += ["--target", cfg["target"]]
    return cmd + (["--resume"] if (run_dir / "run.sqlite").exists() else [])


def run_search(cmd: list) -> dict:
    """Run one ``ctsnas search`` (its stderr shown) and return its JSON summary (stdout from
    the first ``{``)."""
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:  # its stderr went to ours
        raise SystemExit(f"search failed with status {proc.returncode}: {' '.join(cmd)}")
    return json.loads(proc.stdout[proc.stdout.index("{"):])


def read_rows(run_dir: Path) -> list:
    from nas.engine.store import RunStore

    store = RunStore(run_dir, readonly=True)
    rows = store.trials()
    store.close()
    return rows


def by_rung(rows: list) -> dict:
    return {str(k): v for k, v in sorted(Counter(r.get("rung") or 0 for r in rows).items())}


def arm_summary(rows: list) -> dict:
    """Counts, best ok row and the best-validation-so-far curve [[seconds, best], ...] of one
    run (seconds since the first trial's start; only ``ok`` rows count)."""
    timed = [r for r in rows if r["finished_at"] is not None and r["seconds"] is not None]
    t0 = min((r["finished_at"] - r["seconds"] for r in timed), default=0.0)
    best, best_row, curve = math.inf, None, []
    for r in sorted(timed, key=lambda r: r["finished_at"]):
        if r["status"] == "ok" and r["val_mse"] is not None and r["val_mse"] < best:
            best, best_row = r["val_mse"], r
            curve.append([sig5(r["finished_at"] - t0), sig5(best)])
    elapsed = max((r["finished_at"] for r in timed), default=t0) - t0
    if curve:
        curve.append([sig5(elapsed), curve[-1][1]])
    ok = [r for r in rows if r["status"] == "ok"]
    return {"n_trials": len(rows), "n_ok": len(ok),
            "status_counts": dict(Counter(r["status"] for r in rows)),
            "rung_counts": by_rung(rows), "rung_ok_counts": by_rung(ok),
            "best_val_mse": best_row and best_row["val_mse"],
            "best_spec_hash": best_row and best_row["spec_hash"],
            "best_rung": best_row and (best_row.get("rung") or 0),
            "best_trial": best_row and best_row["trial"], "best_spec": best_row and best_row["spec"],
            "time_to_best": curve[-2][0] if curve else None, "elapsed": sig5(elapsed),
            "curve": curve}


def best_at(curve: list, seconds: float):
    """Best val MSE so far at ``seconds`` of wall clock (trials still in flight when the budget
    was spent may finish long after it; this is the arms' time-matched score)."""
    return ([None] + [best for t, best in curve if t <= seconds])[-1]


def phase1(cfg: dict, results: dict, out: Path) -> None:
    arms = results.setdefault("phase1", {})
    for arm in cfg["arms"]:
        if arms.get(arm, {}).get("done_budget") == cfg["budget_seconds"]:
            print(f"phase 1: {arm} done at this budget, skipped")
            continue
        run_dir = Path(cfg["runs"]) / arm
        cmd = search_command(cfg, arm, run_dir)
        print(f"phase 1: {arm}: {' '.join(cmd)}", flush=True)
        summary = run_search(cmd)
        refs = {k: sig5(v.get("val_mse")) for k, v in summary.get("references", {}).items()}
        top = (summary.get("leaderboard") or [{}])[0]  # the engine's pick: highest rung first
        arms[arm] = {**arm_summary(read_rows(run_dir)), "run_dir": str(run_dir),
                     "engine_best": {k: top.get(k)
                                     for k in ("spec_hash", "rung", "val_mse", "spec")},
                     "command": [c for c in cmd[1:] if c != "--resume"],
                     "references_val_mse": refs,
                     "done_budget": cfg["budget_seconds"]}
        arms[arm]["best_val_at_budget"] = best_at(arms[arm]["curve"], cfg["budget_seconds"])
        save_results(results, out)
    plot_curves(arms, out.parent / (out.stem + "_curves.png"))


def plot_curves(arms: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for arm in (arm for arm in ARMS if (arms.get(arm) or {}).get("curve")):
        t, y = zip(*arms[arm]["curve"])
        ax.plot([s / 60 for s in t], y, drawstyle="steps-post", marker=".", label=arm)
    ax.set(xlabel="wall-clock minutes", ylabel="best validation MSE so far")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def choose_best(arms: dict) -> tuple:
    """(arm, {best_val_mse, best_spec_hash, best_spec}): the spec each arm's search returned
    (its leaderboard's first row: in an ASHA run the best of the longest training reached),
    the lowest validation MSE over the arms, ties by arm order (random, evolution, guided)."""
    done = [(a, arms[a]["engine_best"]) for a in ARMS
            if ((arms.get(a) or {}).get("engine_best") or {}).get("val_mse") is not None]
    if not done:
        raise SystemExit("phase 2: no arm of phase 1 has an ok trial; run phase 1 first")
    arm, top = min(done, key=lambda item: item[1]["val_mse"])  # min keeps the first of ties
    return arm, {"best_val_mse": top["val_mse"], "best_spec_hash": top["spec_hash"],
                 "best_spec": top["spec"]}


def test_metrics(result: dict, horizons) -> dict:
    return {str(h): {k: result["horizons"][h]["test"][k] for k in ("mse", "mae")}
            for h in horizons}


def phase2(cfg: dict, results: dict, out: Path) -> None:
    from nas.engine.evaluate import evaluate_encoder, train_encoder

    arm, best = choose_best(results.get("phase1", {}))
    p2 = results.setdefault("phase2", {"arm": arm, "spec_hash": best["best_spec_hash"],
                                       "spec": best["best_spec"], "seeds": {}})
    if p2["spec_hash"] != best["best_spec_hash"] and not p2["seeds"]:
        p2.update(arm=arm, spec_hash=best["best_spec_hash"], spec=best["best_spec"])
    if p2["spec_hash"] != best["best_spec_hash"]:
        raise SystemExit(f"phase 2 in {out} holds seeds of spec {p2['spec_hash']}, phase 1 now "
                         f"picks {best['best_spec_hash']}; remove 'phase2' from the JSON to redo")
    runs = Path(cfg["runs"])
    runs.mkdir(parents=True, exist_ok=True)
    arch = runs / "best_spec.json"
    arch.write_text(json.dumps(p2["spec"], indent=2, sort_keys=True))
    common = {"data": cfg["data"], "horizons": cfg["horizons"], "target": cfg["target"],
              "univariate": True, "data_dir": cfg["data_dir"]}
    for s in cfg["seeds"]:
        if str(s) in p2["seeds"]:
            print(f"phase 2: seed {s} done, skipped")
            continue
        enc = runs / f"best_seed{s}.pt"
        print(f"phase 2: seed {s}: training {p2['spec_hash']} ({cfg['final_profile']})", flush=True)
        trained = train_encoder(arch=str(arch), out=enc, profile=cfg["final_profile"], seed=s,
                                **common)
        row = {"train_seconds": trained["seconds"], "val_mse": trained.get("val_mse"),
               "train_status": trained["status"], "encoder": str(enc), "test": {}}
        for f in FEATURES:
            res = evaluate_encoder(encoder=enc, references=(s == 0), features=f, **common)
            row["test"][f] = test_metrics(res["model"], cfg["horizons"])
            if s == 0:
                row.setdefault("references", {})[f] = {
                    name: test_metrics(ref, cfg["horizons"]) for name, ref
                    in res["references"].items()}
        p2["seeds"][str(s)] = row
        save_results(results, out)


def aggregate(p2: dict, horizons) -> dict:
    """Per features per H: mean and sd (ddof 1) of the test MSE over the seeds done."""
    out = {}
    for f in FEATURES:
        for h in map(str, horizons):
            v = [row["test"][f][h]["mse"] for row in p2["seeds"].values()]
            out.setdefault(f, {})[h] = {"mean": sig5(float(np.mean(v))), "n": len(v),
                                        "sd": sig5(float(np.std(v, ddof=1))) if len(v) > 1 else None}
    return out


def reference_rows(cfg: dict, p2: dict) -> dict:
    """Reference test MSE per row name per H (str): literature (ETTh1's five H only) and this
    run's raw-lookback Ridge and random encoder (seed 0, ``repr``)."""
    refs = {name: {str(h): v for h, v in zip(H5, vals) if h in cfg["horizons"]}
            for name, vals in LITERATURE.items()} if cfg["data"] == "ETTh1" else {}
    own = p2.get("seeds", {}).get("0", {}).get("references", {}).get("repr", {})
    for key, name in (("raw_lookback", "raw Ridge"), ("random_encoder", "random encoder")):
        refs[name] = {h: m["mse"] for h, m in own.get(key, {}).items()}
    return refs


def count_below(means: dict, ref: dict, need: int) -> dict:
    hs = [h for h in means if h in ref and means[h]["mean"] is not None]
    n = sum(means[h]["mean"] < ref[h] for h in hs)
    return {"below": n, "compared": len(hs), "need": need, "pass": n >= need if hs else None}


def targets(agg: dict, refs: dict, arms: dict) -> dict:
    def lower(a, b):
        out = {}
        for key in ("best_val_mse", "best_val_at_budget"):  # all trials / finished by budget
            va, vb = ((arms.get(x) or {}).get(key) for x in (a, b))
            out[key] = None if va is None or vb is None else va < vb
        return out

    return {"repr_below_ts2vec_preset_4of5": count_below(agg["repr"],
                                                         refs.get("ts2vec preset", {}), 4),
            "repr_below_AutoTCL_3of5": count_below(agg["repr"], refs.get("AutoTCL", {}), 3),
            "repr+raw_below_raw_Ridge_4of5": count_below(agg["repr+raw"], refs["raw Ridge"], 4),
            "evolution_asha_below_random_val": lower("evolution", "random"),
            "guided_below_random_val": lower("guided", "random"),
            "guided_below_evolution_val": lower("guided", "evolution")}


def fmt(x, sd=None) -> str:
    return "-" if x is None else f"{x:.4f}" + (f" ({sd:.4f})" if sd is not None else "")


def tables(cfg: dict, results: dict) -> str:
    head = ("| arm | trials | ok | per rung (all/ok) | best val MSE | rung | spec hash | "
            "time to best (min) | elapsed (min) | best val at budget |")
    lines = [head, "|---" * 10 + "|"]
    arms = results.get("phase1", {})
    for arm, a in ((arm, arms[arm]) for arm in ARMS if arm in arms):
        rungs = ", ".join(f"{k}: {v}/{a['rung_ok_counts'].get(k, 0)}"
                          for k, v in a["rung_counts"].items())
        minutes = ["-" if t is None else f"{t / 60:.1f}" for t in (a["time_to_best"],
                                                                    a["elapsed"])]
        lines.append(f"| {arm} | {a['n_trials']} | {a['n_ok']} | {rungs} | "
                     f"{fmt(a['best_val_mse'])} | {a['best_rung']} | "
                     f"{(a['best_spec_hash'] or '-')[:12]} | {' | '.join(minutes)} | "
                     f"{fmt(a.get('best_val_at_budget'))} |")
    p3 = results.get("phase3")
    if p3:
        names = [n for n in p3["references"] if "before" not in n]  # own raw Ridge shown
        lines += ["", "| H | searched repr mean (sd) | searched repr+raw mean (sd) | "
                  + " | ".join(names) + " |", "|---" * (3 + len(names)) + "|"]
        for h in map(str, cfg["horizons"]):
            cells = [fmt(p3["mean"][f][h]["mean"], p3["mean"][f][h]["sd"]) for f in FEATURES]
            cells += [fmt(p3["references"][n].get(h)) for n in names]
            lines.append(f"| {h} | " + " | ".join(cells) + " |")
        lines += ["", "Targets:", ""] + [f"- {k}: {json.dumps(v)}"
                                          for k, v in p3["targets"].items()]
    return "\n".join(lines) + "\n"


def phase3(cfg: dict, results: dict, out: Path) -> None:
    p2 = results.get("phase2") or {}
    if p2.get("seeds"):
        refs = reference_rows(cfg, p2)
        agg = aggregate(p2, cfg["horizons"])
        results["phase3"] = {"mean": agg, "references": refs,
                             "targets": targets(agg, refs, results.get("phase1", {}))}
        save_results(results, out)
    else:
        print("phase 3: no phase-2 seed yet; phase-1 table only")
    md = tables(cfg, results)
    print(md)
    out.with_suffix(".md").write_text(md)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-seconds", type=float, default=600)
    parser.add_argument("--runs", default=None, help="default runs/search_quality")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--phase", choices=["1", "2", "3", "all"], default="all")
    parser.add_argument("--arms", default="random,evolution,guided")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--dry-run", action="store_true",
                        help="co2, smoke profile, H 4,12, 20 s per arm, seed 0; needs no data")
    parser.add_argument("--out", default=None, help="results JSON (default "
                        "benchmarks/results/etth1_search.json; a temp file with --dry-run)")
    args = parser.parse_args()
    if set(args.arms.split(",")) - set(ARMS):
        parser.error(f"--arms: allowed: {','.join(ARMS)}")
    cfg = settings(args)
    out = Path(cfg["out"])
    results = json.loads(out.read_text()) if out.is_file() else {}
    results["config"] = cfg
    for phase, run in (("1", phase1), ("2", phase2), ("3", phase3)):
        if args.phase in (phase, "all"):
            run(cfg, results, out)
    print(f"results: {out}")


if __name__ == "__main__":
    main()
