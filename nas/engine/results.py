"""A search's results: the leaderboard, JSON files of the run directory, the best-so-far plot,
the stored summary and the trials table export (the end-of-search work is
:mod:`nas.engine.finalize`)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import pandas as pd  # noqa: E402
from search_spaces.learner.storage import write_atomic  # noqa: E402

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
    """The stored run as :func:`~nas.engine.finalize.finalize`'s summary (config, trials,
    failures, reference rows, training gains, leaderboard, best_test once written), read
    without creating or writing
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
