"""The run store: one SQLite database (WAL mode) per run directory.

Holds the run's config and every trial, each written the moment it completes, so a driver
killed at any point (even SIGKILL) loses nothing already computed.
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

DB_NAME = "run.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    trial INTEGER PRIMARY KEY,       -- position in the asked order (0 = the ts2vec preset)
    spec_hash TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,              -- JSON
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,            -- ok | failed | diverged | timeout
    val_mse REAL,                    -- mean validation MSE over the horizons (the score)
    metrics TEXT,                    -- JSON: per-horizon validation metrics
    n_params INTEGER,
    seconds REAL,                    -- wall-clock seconds of the trial (training + probe)
    node TEXT,                       -- Ray node id / host that ran it
    versions TEXT,                   -- JSON: package versions on the worker
    error TEXT,
    finished_at REAL                 -- UNIX time
);
"""
TRIAL_COLUMNS = ("trial", "spec_hash", "spec", "seed", "status", "val_mse", "metrics",
                 "n_params", "seconds", "node", "versions", "error", "finished_at")
JSON_COLUMNS = ("spec", "metrics", "versions")
#: Config keys of runs written by older versions -> their current names (mapped on read).
LEGACY_KEYS = {"budget": "trials"}


class RunStore:
    """SQLite run store of one run directory.

    Raises:
        ValueError: ``run_dir`` exists as a file, or its database is not a run store.
    """

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise ValueError(f"run_dir: {self.run_dir} exists and is not a directory; "
                             "allowed: a directory or a new path")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / DB_NAME
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"run_dir: {self.path} is not a ctsnas run store ({exc}); "
                             "allowed: a run directory or a new path") from None

    def close(self) -> None:
        self.db.close()

    def get_config(self) -> dict | None:
        """The stored run config (None for a new store); legacy keys under their current
        names (:data:`LEGACY_KEYS`)."""
        rows = self.db.execute("SELECT key, value FROM config").fetchall()
        return {LEGACY_KEYS.get(k, k): json.loads(v) for k, v in rows} if rows else None

    def set_config(self, config: dict) -> None:
        with self.db:
            self.db.execute("BEGIN")
            for key, value in config.items():
                self.db.execute("INSERT OR REPLACE INTO config VALUES (?, ?)",
                                (key, json.dumps(value, sort_keys=True)))

    def add_trial(self, row: dict) -> None:
        """Insert one finished trial (atomic; a second write of the same hash is ignored)."""
        values = {c: row.get(c) for c in TRIAL_COLUMNS}
        values["finished_at"] = values["finished_at"] or time.time()
        for c in JSON_COLUMNS:
            if values[c] is not None:
                values[c] = json.dumps(values[c], sort_keys=True)
        marks = ", ".join("?" for _ in TRIAL_COLUMNS)
        self.db.execute(f"INSERT OR IGNORE INTO trials VALUES ({marks})",
                        [values[c] for c in TRIAL_COLUMNS])

    def trials(self) -> list:
        """All trials as dicts, in planned order, JSON columns decoded."""
        cur = self.db.execute(f"SELECT {', '.join(TRIAL_COLUMNS)} FROM trials ORDER BY trial")
        out = []
        for row in cur.fetchall():
            item = dict(zip(TRIAL_COLUMNS, row))
            for c in JSON_COLUMNS:
                item[c] = json.loads(item[c]) if item[c] is not None else None
            out.append(item)
        return out

    def done_hashes(self) -> set:
        return {h for (h,) in self.db.execute("SELECT spec_hash FROM trials")}
