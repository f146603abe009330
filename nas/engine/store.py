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
    spec_hash TEXT NOT NULL,
    spec TEXT NOT NULL,              -- JSON
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,            -- ok, degenerate, failed, diverged, timeout, out_of_memory
    val_mse REAL,                    -- mean validation MSE over the horizons (the score)
    metrics TEXT,                    -- JSON: per-horizon validation metrics
    n_params INTEGER,
    seconds REAL,                    -- wall-clock seconds of the trial (training + probe)
    node TEXT,                       -- Ray node id / host that ran it
    versions TEXT,                   -- JSON: package versions on the worker
    error TEXT,
    finished_at REAL,                -- UNIX time
    rung INTEGER NOT NULL DEFAULT 0, -- ASHA rung (0: the first, or a single-fidelity run)
    UNIQUE (spec_hash, rung)
);
"""
#: Added to a store written before ASHA (whose spec_hash alone is unique: its trials are all
#: rung 0, so the constraint is the same).
MIGRATION = "ALTER TABLE trials ADD COLUMN rung INTEGER NOT NULL DEFAULT 0"
TRIAL_COLUMNS = ("trial", "spec_hash", "spec", "seed", "status", "val_mse", "metrics",
                 "n_params", "seconds", "node", "versions", "error", "finished_at", "rung")
JSON_COLUMNS = ("spec", "metrics", "versions")
#: Config keys of runs written by older versions -> their current names (mapped on read).
LEGACY_KEYS = {"budget": "trials"}


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection that creates nothing: ``mode=ro`` while a writer's WAL file
    exists (a search running or killed), else ``immutable=1`` (no WAL index files created,
    so it also works in a directory this process cannot write)."""
    uri = path.resolve().as_uri()
    wal = path.with_name(path.name + "-wal")
    flag = "mode=ro" if wal.exists() else "immutable=1"
    return sqlite3.connect(f"{uri}?{flag}", uri=True, timeout=30, isolation_level=None)


class RunStore:
    """SQLite run store of one run directory.

    ``readonly``: open an existing store without creating or writing anything (``mode=ro``);
    for the commands that only read (``ctsnas runs``).

    Raises:
        ValueError: ``run_dir`` exists as a file, cannot be created or written, holds no
            run (``readonly``), or its database is not a run store.
    """

    def __init__(self, run_dir, readonly: bool = False):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / DB_NAME
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise ValueError(f"run_dir: {self.run_dir} exists and is not a directory; "
                             "allowed: a directory or a new path")
        if readonly and not self.path.is_file():
            raise ValueError(f"run_dir: {self.run_dir} holds no run (no {DB_NAME}); allowed: "
                             "a directory written by a search")
        try:
            self.db = _connect_readonly(self.path) if readonly else self._connect()
            self.db.execute("SELECT key FROM config LIMIT 1").fetchall()
            self.db.execute("SELECT trial FROM trials LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"run_dir: {self.path} is not a readable ctsnas run store ({exc}); "
                             "allowed: a run directory or a new path") from None

    def _connect(self) -> sqlite3.Connection:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"run_dir: cannot create {self.run_dir} ({exc.strerror or exc}); "
                             "allowed: a path in a folder you can write") from None
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        columns = {name for _, name, *_ in db.execute("PRAGMA table_info(trials)")}
        if "rung" not in columns:
            db.execute(MIGRATION)
        return db

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
        """Insert one finished trial (atomic; a second write of the same hash and rung is
        ignored)."""
        values = {c: row.get(c) for c in TRIAL_COLUMNS}
        values["finished_at"] = values["finished_at"] or time.time()
        values["rung"] = values["rung"] or 0
        for c in JSON_COLUMNS:
            if values[c] is not None:
                values[c] = json.dumps(values[c], sort_keys=True)
        marks = ", ".join("?" for _ in TRIAL_COLUMNS)
        self.db.execute(f"INSERT OR IGNORE INTO trials VALUES ({marks})",
                        [values[c] for c in TRIAL_COLUMNS])

    def trials(self) -> list:
        """All trials as dicts, in planned order, JSON columns decoded (``rung`` 0 for a store
        written before ASHA, even when opened read-only)."""
        present = {name for _, name, *_ in self.db.execute("PRAGMA table_info(trials)")}
        columns = [c for c in TRIAL_COLUMNS if c in present]
        cur = self.db.execute(f"SELECT {', '.join(columns)} FROM trials ORDER BY trial")
        out = []
        for row in cur.fetchall():
            item = {"rung": 0, **dict(zip(columns, row))}
            for c in JSON_COLUMNS:
                item[c] = json.loads(item[c]) if item[c] is not None else None
            out.append(item)
        return out

    def done_hashes(self) -> set:
        """Hashes of the specs with a stored trial (any rung)."""
        return {h for (h,) in self.db.execute("SELECT spec_hash FROM trials")}
