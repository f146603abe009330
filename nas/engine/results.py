"""End of a search: leaderboard with reference rows, best spec, its test metrics, plot, export."""
from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import pandas as pd  # noqa: E402
import ray  # noqa: E402

import downstream as ds  # noqa: E402
import search_spaces as ss  # noqa: E402
from search_spaces.learner import ContrastiveLearner  # noqa: E402
from search_spaces.learner.storage import write_atomic  # noqa: E402

from .evaluate import (  # noqa: E402
    input_scaling,
    load_options,
    random_encoder_probe,
    reference_rows,
)
from .forecast import online_reference_rows, random_online  # noqa: E402
from .titans import random_titans, titans_reference_rows  # noqa: E402
from .store import RunStore  # noqa: E402

EXPORT_FORMATS = ("csv", "parquet", "jsonl")


def read_json(path: Path):
    """A JSON file the driver wrote, or None when it is absent.

    Raises:
        ValueError: unreadable or not JSON, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"run_dir: cannot read {path} ({type(exc).__name__}); allowed: delete "
                         "it and resume the run to write it again") from None


def write_json(value, path: Path) -> None:
    """``value`` as JSON at ``path``, atomically (temporary name, then rename)."""
    write_atomic(json.dumps(value, indent=2, sort_keys=True).encode(), path)


def _cached(path: Path, compute, fresh=lambda value: True):
    """The JSON at ``path`` if present and ``fresh(value)``, else ``compute()`` written there."""
    try:
        value = read_json(path)
    except ValueError:  # cut off by an older, non-atomic writer: computed again
        value = None
    if value is None or not fresh(value):
        value = compute()
        write_json(value, path)
    return value


def leaderboard(rows: list) -> list:
    """Successful trials by validation MSE, then the ``degenerate`` ones (trained to nothing,
    see :func:`~nas.engine.evaluate.is_degenerate`; by validation MSE, unranked however low
    it is), then the failed ones; only successful trials get a rank. In an ASHA run the
    higher rungs (longer training) come first: a score is compared with those of its own
    training length."""
    def by_mse(status):
        return sorted((r for r in rows if r["status"] == status),
                      key=lambda r: (-(r.get("rung") or 0), r["val_mse"]))

    bad = [r for r in rows if r["status"] not in ("ok", "degenerate")]
    return [{**r, "rank": i + 1 if r["status"] == "ok" else None}
            for i, r in enumerate(by_mse("ok") + by_mse("degenerate") + bad)]


#: Leaderboard rows whose training gain :func:`finalize` computes (the random-init probe costs
#: 25-50% of a smoke/screen trial on co2, far over 10%, so it is not run in every trial).
GAIN_TOP = 3


def training_gains(board: list, task, horizons, features: str = "repr",
                   top: int = GAIN_TOP, downstream: str = "probe", threads: int = 1) -> dict:
    """The training gain of the :func:`gain_rows`: ``{trial: {"random_val_mse", "gain"}}``
    (keys are str), ``gain`` = validation MSE of the spec's encoder at its random
    initialisation (same seed) minus the trained one's (> 0: training helped); with
    ``downstream="fsnet"`` both are online validation MSEs of FSNet over the encoder, with
    ``"titans"`` mode-A validation MSEs of Titans over it (run with ``threads`` torch
    threads)."""
    out = {}
    for r in gain_rows(board, top):
        if downstream == "fsnet":
            random = random_online(r["spec"], task, horizons, r["seed"], threads=threads)
        elif downstream == "titans":
            random = random_titans(r["spec"], task, horizons, r["seed"], threads=threads)
        else:
            random = random_encoder_probe(r["spec"], task, horizons, r["seed"], features=features)
        random = random["val_mse"]
        out[str(r["trial"])] = {"random_val_mse": random, "gain": random - r["val_mse"]}
    return out


def gain_rows(board: list, top: int = GAIN_TOP) -> list:
    """The leaderboard rows whose training gain is reported: the ``top`` best-ranked ``ok``
    rows of distinct specs (an ASHA run holds a spec once per rung it reached)."""
    ranked = {}
    for r in board:
        if r["status"] == "ok":
            ranked.setdefault(r["spec_hash"], r)
    return list(ranked.values())[:top]


def reference_tests(spec: dict, task, config: dict) -> dict:
    """Test metrics of the reference rows for ``best_test.json``: per horizon (str),
    ``{"raw_lookback": metrics, "random_encoder": metrics}`` (the best spec's encoder at its
    random initialisation, the run's seed and probe features)."""
    refs = _reference_rows(spec, task, config, test=True)
    return {str(h): {name: refs[name]["horizons"][h]["test"] for name in refs}
            for h in config["horizons"]}


def _reference_rows(spec: dict, task, config: dict, test: bool = False) -> dict:
    """The reference rows of the run's objective: the probe's
    (:func:`~nas.engine.evaluate.reference_rows`) or, with ``downstream`` fsnet, the online
    ones (:func:`~nas.engine.forecast.online_reference_rows`) or, with ``titans``, Titans'
    (:func:`~nas.engine.titans.titans_reference_rows`)."""
    downstream = config.get("downstream", "probe")
    if downstream in ("fsnet", "titans"):
        rows = online_reference_rows if downstream == "fsnet" else titans_reference_rows
        return rows(spec, task, config["horizons"], config["seed"], test,
                    config["cpus_per_trial"])
    return reference_rows(spec, task, config["horizons"], config["seed"], test=test,
                          features=config.get("features", "repr"))


def best_so_far(rows: list) -> list:
    """The best validation MSE so far after each completed trial (completion order; None
    until a trial succeeds)."""
    best, curve = float("inf"), []
    for r in sorted(rows, key=lambda r: r["finished_at"] or 0):
        if r["status"] == "ok":
            best = min(best, r["val_mse"])
        curve.append(best if best < float("inf") else None)
    return curve


def best_so_far_image(rows: list, fmt: str = "png") -> bytes:
    """The :func:`best_so_far` curve against trials completed as a PNG or SVG image (bytes);
    in the SVG the curve's markers lie in the group ``id="best-so-far"``."""
    curve = best_so_far(rows)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(curve) + 1), curve, drawstyle="steps-post", marker=".",
            gid="best-so-far")
    ax.set_xlabel("trials completed")
    ax.set_ylabel("best validation MSE")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=120, metadata={"Date": None} if fmt == "svg" else None)
    plt.close(fig)
    return buffer.getvalue()


def plot_best_so_far(rows: list, path: Path) -> None:
    """PNG of the best validation MSE so far against trials (completion order)."""
    write_atomic(best_so_far_image(rows, "png"), path)


def save_best(runner, best: dict) -> dict:
    """Retrain the best spec (same seed, its rung's training length) on a worker, probe the
    test split and write ``best_test.json`` (per horizon its metrics and, under
    ``references``, the reference rows' test metrics, see :func:`reference_tests`) and
    ``best_encoder.pt`` (the learner its test metrics come from, with the task's input
    scaling), each atomically. Returns the test row (without the bytes)."""
    run_dir, config = runner.store.run_dir, runner.config
    final = ray.get(runner.submit(best["trial"], best["spec"], test=True,
                                  rung=best.get("rung") or 0))
    if final["status"] != "ok":
        return final
    model = ContrastiveLearner.from_bytes(final.pop("encoder"), "the best trial's encoder")
    series = ds.load(config["data"], config["data_dir"], **load_options(config))
    model.scaling = input_scaling(series, runner.task)
    model.save(run_dir / "best_encoder.pt")
    refs = reference_tests(best["spec"], runner.task, config)
    metrics = {h: {**m, "references": refs[h]} for h, m in final["metrics"].items()}
    write_json(metrics, run_dir / "best_test.json")
    return final


def _best_changed(run_dir: Path, best: dict) -> bool:
    """Whether ``best_trial.json`` names another trial than ``best`` (a resumed run with more
    trials or time found a better one, or an ASHA promotion outranked it): its test metrics
    and encoder are then computed again. Records ``best`` in it."""
    try:
        previous = read_json(run_dir / "best_trial.json")
    except ValueError:
        previous = None
    write_json({"trial": best["trial"], "spec_hash": best["spec_hash"],
                "rung": best.get("rung") or 0}, run_dir / "best_trial.json")
    return previous is not None and previous.get("trial") != best["trial"]


def finalize(runner) -> dict:
    """Write best_spec.json, best_trial.json, references.json, training_gain.json
    (:func:`training_gains`), best_test.json, best_encoder.pt (the best spec's trained learner,
    see :class:`~search_spaces.learner.ContrastiveLearner`) and best_so_far.png into the run
    directory and return a summary. Each is computed once: a resumed run reuses them unless
    its best trial (or, for the gains, its top rows) changed."""
    store, config, task = runner.store, runner.config, runner.task
    run_dir = store.run_dir
    rows = store.trials()
    board = leaderboard(rows)
    refs = _cached(run_dir / "references.json", lambda: {
        k: {"val_mse": v["val_mse"], "horizons": {str(h): r for h, r in v["horizons"].items()}}
        for k, v in _reference_rows(ss.preset("ts2vec"), task, config).items()})
    gains = _cached(run_dir / "training_gain.json", lambda: training_gains(
        board, task, config["horizons"], config.get("features", "repr"),
        downstream=config.get("downstream", "probe"), threads=config["cpus_per_trial"]),
        fresh=lambda v: set(v) == {str(r["trial"]) for r in gain_rows(board)})
    summary = {"run_dir": str(run_dir), "config": config, "n_trials": len(rows),
               "n_failed": sum(r["status"] != "ok" for r in rows), "references": refs,
               "training_gain": gains, "leaderboard": board}
    plot_best_so_far(rows, run_dir / "best_so_far.png")
    if board and board[0]["status"] == "ok":
        best = board[0]
        write_json(best["spec"], run_dir / "best_spec.json")
        path, encoder = run_dir / "best_test.json", run_dir / "best_encoder.pt"
        if not (path.exists() and encoder.exists()) or _best_changed(run_dir, best):
            final = save_best(runner, best)
            if final["status"] != "ok":
                summary["best_test_error"] = final["error"]
        if path.exists():
            summary["best_test"] = read_json(path)
        if encoder.exists():
            summary["best_encoder"] = str(encoder)
    return summary


def trials_frame(run_dir) -> pd.DataFrame:
    """The run's trials as a flat table: one column per horizon's validation MSE/MAE (the
    store opened read-only: nothing is created).

    Raises:
        ValueError: ``run_dir`` holds no run or an unreadable one.
    """
    store = RunStore(run_dir, readonly=True)
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


def run_summary(run_dir) -> dict:
    """The stored run as :func:`finalize`'s summary (config, trials, failures, reference rows,
    training gains, leaderboard, best_test once written), read without creating or writing
    anything: what ``ctsnas runs show`` prints and the service serves.

    Raises:
        ValueError: ``run_dir`` holds no run or an unreadable one.
    """
    store = RunStore(run_dir, readonly=True)
    try:
        config, rows = store.get_config(), store.trials()
    finally:
        store.close()
    summary = {"run_dir": str(run_dir), "config": config, "n_trials": len(rows),
               "n_failed": sum(r["status"] != "ok" for r in rows),
               "references": read_json(Path(run_dir) / "references.json") or {},
               "training_gain": read_json(Path(run_dir) / "training_gain.json") or {},
               "leaderboard": leaderboard(rows)}
    best_test = read_json(Path(run_dir) / "best_test.json")
    if best_test:
        summary["best_test"] = best_test
    return summary


def export(run_dir, fmt: str, out=None) -> Path:
    """Write the trials table as csv, parquet or jsonl (default: RUN_DIR/trials.FORMAT).

    The file is written to a temporary name and renamed; ``out``'s missing parent folders
    are created.

    Raises:
        ValueError: unknown format, a directory that is not a run, or an ``out`` that cannot
            be written (naming the folder).
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"fmt: got {fmt!r}; allowed: {list(EXPORT_FORMATS)}")
    frame = trials_frame(run_dir)
    out = Path(out) if out else Path(run_dir) / f"trials.{fmt}"
    buffer = io.BytesIO()
    if fmt == "csv":
        frame.to_csv(buffer, index=False)
    elif fmt == "parquet":
        frame.to_parquet(buffer, index=False)
    else:
        frame.to_json(buffer, orient="records", lines=True)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(buffer.getvalue(), out)
    except OSError as exc:
        raise ValueError(f"out: cannot write {out} ({exc.strerror or exc}); allowed: a file "
                         f"path in a folder you can write") from None
    return out
