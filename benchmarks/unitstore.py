"""The result file of a resumable benchmark: ``{"units": {key: row}, ...}`` as JSON, each unit
written atomically under a file lock as soon as it is done, so shards can share one file."""
from __future__ import annotations

import json
from pathlib import Path

from filelock import FileLock

from nas.engine.results import write_json


def load(path: Path) -> dict:
    """The results so far (``{"units": {}}`` when the file is absent)."""
    return json.loads(Path(path).read_text()) if Path(path).exists() else {"units": {}}


def record(path: Path, key: str, row: dict) -> None:
    """Store ``row`` as unit ``key``, re-reading the file under its lock first."""
    with FileLock(str(path) + ".lock"):
        results = load(path)
        results["units"][key] = row
        write_json(results, path)
