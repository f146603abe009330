"""Task features of the suite's tasks for the comparator, and where they are cached.

The features of every suite task are shipped in ``seeds/task_features.json`` (read only). The
features of other tasks, or of all tasks when that file is gone, are computed with the
shipped reference encoder and cached outside the installed package: in the file given, else
in the user cache directory (:func:`cache_dir`), one file per reference encoder (the file name
holds a hash of its weights, so a retrained reference never reads stale features).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import seeds
from comparator.task_features import WEIGHTS, load_reference, task_features
from seeds.suite import load_slice, suite

SEEDS_DIR = Path(seeds.__file__).resolve().parent
SHIPPED_FEATURES = SEEDS_DIR / "task_features.json"


def cache_dir() -> Path:
    """The user cache directory of ctsnas: ``$CTSNAS_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/ctsnas``, else ``~/.cache/ctsnas`` (not created here)."""
    if os.environ.get("CTSNAS_CACHE_DIR"):
        return Path(os.environ["CTSNAS_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "ctsnas"
    return Path.home() / ".cache" / "ctsnas"


def default_cache() -> Path:
    """The feature cache file for the shipped reference encoder, in :func:`cache_dir`."""
    digest = hashlib.sha256((WEIGHTS / "reference_encoder.pt").read_bytes()).hexdigest()[:12]
    return cache_dir() / f"task_features-{digest}.json"


def suite_features(task_ids, data_dir=None, encoder=None) -> dict:
    """task_id -> unstandardised task feature list for tasks of the default suite.

    Raises:
        ValueError: a task id that is not in the suite, or a missing dataset.
    """
    encoder = encoder or load_reference()
    by_id = {t["task_id"]: t for t in suite()}
    out = {}
    for tid in sorted(task_ids):
        if tid not in by_id:
            raise ValueError(f"task_id: got {tid!r}; allowed: a task of the default suite "
                             "(seeds.suite)")
        t = by_id[tid]
        task = load_slice(t, data_dir)
        x = task.x[:task.splits["train"][1], task.n_covariates:]
        out[tid] = task_features(x, t["horizon"], t["univariate"], encoder).tolist()
    return out


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def load_features(records: list, data_dir=None, cache=None, shipped=SHIPPED_FEATURES) -> dict:
    """task_id -> features for the tasks of ``records``: the ``shipped`` ones (never written),
    then those in the ``cache`` JSON file (default :func:`default_cache`); the missing ones
    are computed (:func:`suite_features`) and added to ``cache``.

    Raises:
        ValueError: a task that is not in the suite, or a missing dataset.
    """
    features = _read(Path(shipped))
    wanted = {r["task_id"] for r in records}
    if wanted <= set(features):
        return features
    cache = Path(cache) if cache is not None else default_cache()
    cached = _read(cache)
    missing = wanted - set(features) - set(cached)
    if missing:
        cached.update(suite_features(missing, data_dir))
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cached, sort_keys=True))
        tmp.replace(cache)  # atomic: a concurrent reader sees the old or the new file
    return {**cached, **features}


def train_reference(profile="paper", seed: int = 0) -> dict:
    """Retrain the shipped reference encoder of the task features (a maintainer's step: it
    rewrites ``comparator/weights/reference_encoder.pt`` and drops the shipped
    ``seeds/task_features.json``, which depend on it) on the embedded co2 series (training
    split, no calendar covariates; never a suite dataset)."""
    import downstream as ds
    from comparator.task_features import save_reference, train_reference_encoder

    from ..engine.evaluate import input_scaling

    series = ds.load("co2")
    task = ds.make_task(series, univariate=True, covariates=False)
    start, end = task.splits["train"]
    t0 = time.perf_counter()
    encoder = train_reference_encoder(task.x[None, start:end], profile, seed,
                                      scaling=input_scaling(series, task))
    save_reference(encoder)
    SHIPPED_FEATURES.unlink(missing_ok=True)
    return {"profile": profile, "seed": seed, "train_rows": end - start,
            "seconds": time.perf_counter() - t0}
