"""End of a search: leaderboard with reference rows, best spec, its test metrics, plot, export."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import ray  # noqa: E402

import downstream as ds  # noqa: E402
import search_spaces as ss  # noqa: E402
from search_spaces.learner import ContrastiveLearner  # noqa: E402
from search_spaces.learner.storage import write_atomic  # noqa: E402

from .evaluate import input_scaling, reference_rows  # noqa: E402
from .store import RunStore  # noqa: E402

EXPORT_FORMATS = ("csv", "parquet", "jsonl")


def _cached(path: Path, compute):
    if path.exists():
        return json.loads(path.read_text())
    value = compute()
    path.write_text(json.dumps(value, indent=2, sort_keys=True))
    return value


def leaderboard(rows: list) -> list:
    """Successful trials by validation MSE, then the failed ones; each with its rank."""
    ok = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: r["val_mse"])
    bad = [r for r in rows if r["status"] != "ok"]
    return [{**r, "rank": i + 1 if r["status"] == "ok" else None}
            for i, r in enumerate(ok + bad)]


def plot_best_so_far(rows: list, path: Path) -> None:
    """PNG of the best validation MSE so far against trials (completion order)."""
    done = sorted(rows, key=lambda r: r["finished_at"] or 0)
    best, curve = float("inf"), []
    for r in done:
        if r["status"] == "ok":
            best = min(best, r["val_mse"])
        curve.append(best if best < float("inf") else None)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(curve) + 1), curve, drawstyle="steps-post", marker=".")
    ax.set_xlabel("trials completed")
    ax.set_ylabel("best validation MSE")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save_best(runner, best: dict) -> dict:
    """Retrain the best spec (same seed) on a worker, probe the test split and write
    ``best_test.json`` and ``best_encoder.pt`` (the learner its test metrics come from, with
    the task's input scaling), each atomically. Returns the test row (without the bytes)."""
    run_dir, config = runner.store.run_dir, runner.config
    final = ray.get(runner.submit(best["trial"], best["spec"], test=True))
    if final["status"] != "ok":
        return final
    model = ContrastiveLearner.from_bytes(final.pop("encoder"), "the best trial's encoder")
    model.scaling = input_scaling(ds.load(config["data"], config["data_dir"]), runner.task)
    model.save(run_dir / "best_encoder.pt")
    write_atomic(json.dumps(final["metrics"], indent=2, sort_keys=True).encode(),
                 run_dir / "best_test.json")
    return final


def finalize(runner) -> dict:
    """Write best_spec.json, references.json, best_test.json, best_encoder.pt (the best spec's
    trained learner, see :class:`~search_spaces.learner.ContrastiveLearner`) and
    best_so_far.png into the run directory (each computed once; a resumed finished run reuses
    them) and return a summary."""
    store, config, task = runner.store, runner.config, runner.task
    run_dir = store.run_dir
    rows = store.trials()
    board = leaderboard(rows)
    refs = _cached(run_dir / "references.json", lambda: {
        k: {"val_mse": v["val_mse"], "horizons": {str(h): r for h, r in v["horizons"].items()}}
        for k, v in reference_rows(ss.preset("ts2vec"), task, config["horizons"],
                                   config["seed"]).items()})
    summary = {"run_dir": str(run_dir), "config": config, "n_trials": len(rows),
               "n_failed": sum(r["status"] != "ok" for r in rows), "references": refs,
               "leaderboard": board}
    plot_best_so_far(rows, run_dir / "best_so_far.png")
    if board and board[0]["status"] == "ok":
        best = board[0]
        (run_dir / "best_spec.json").write_text(json.dumps(best["spec"], indent=2))
        path, encoder = run_dir / "best_test.json", run_dir / "best_encoder.pt"
        if not (path.exists() and encoder.exists()):
            final = save_best(runner, best)
            if final["status"] != "ok":
                summary["best_test_error"] = final["error"]
        if path.exists():
            summary["best_test"] = json.loads(path.read_text())
        if encoder.exists():
            summary["best_encoder"] = str(encoder)
    return summary


def trials_frame(run_dir) -> pd.DataFrame:
    """The run's trials as a flat table: one column per horizon's validation MSE/MAE."""
    store = RunStore(run_dir)
    try:
        rows = store.trials()
    finally:
        store.close()
    flat = []
    for r in rows:
        item = {k: v for k, v in r.items() if k not in ("metrics", "versions", "spec")}
        item["spec"] = json.dumps(r["spec"], sort_keys=True)
        for h, m in (r["metrics"] or {}).items():
            item[f"val_mse_{h}"] = m["val"]["mse"]
            item[f"val_mae_{h}"] = m["val"]["mae"]
        item["torch"] = (r["versions"] or {}).get("torch")
        flat.append(item)
    return pd.DataFrame(flat)


def export(run_dir, fmt: str, out=None) -> Path:
    """Write the trials table as csv, parquet or jsonl (default: RUN_DIR/trials.FORMAT).

    Raises:
        ValueError: unknown format, or a directory that is not a run.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"fmt: got {fmt!r}; allowed: {list(EXPORT_FORMATS)}")
    if not (Path(run_dir) / "run.sqlite").is_file():
        raise ValueError(f"run_dir: {run_dir} holds no run (no run.sqlite)")
    frame = trials_frame(run_dir)
    out = Path(out) if out else Path(run_dir) / f"trials.{fmt}"
    if fmt == "csv":
        frame.to_csv(out, index=False)
    elif fmt == "parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_json(out, orient="records", lines=True)
    return out
