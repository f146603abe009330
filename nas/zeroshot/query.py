"""``ctsnas query``: zero-shot ranking of random candidates for a new dataset with the shipped
T-AHC, optionally training the top K through the Ray runner (AutoCTS++ zero-shot search).
"""
from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import ray

import comparator as cp
import search_spaces as ss
from comparator.task_features import load_reference, task_features
from search_spaces.cost import relative_cost

from ..engine.evaluate import load_options, prepare
from ..engine.runner import Search, init_ray, profile_name, resolve_profile
from ..engine.store import RunStore
from .comparators import WEIGHTS_DIR, load_trained, standardise
from .seeds import sample_capped

QUERY_DEFAULTS = {"samples": 20000, "top": 5, "train_top": 0, "seed": 0, "max_cost": 1.5,
                  "profile": "screen", "workers": 1, "cpus_per_trial": 1,
                  "trial_timeout": None, "max_retries": 3, "address": None,
                  "compare_ts2vec": False, "weights": str(WEIGHTS_DIR), "anchor_share": 0.0}


def check_query(config: dict) -> dict:
    """Fill defaults; refuse bad options before any work.

    Raises:
        ValueError: samples < top, top < 1, train_top < 0 or > top, anchor_share outside
            [0, 1], unknown profile.
    """
    config = {**QUERY_DEFAULTS, **{k: v for k, v in config.items() if v is not None}}
    for key, low in (("samples", 1), ("top", 1), ("train_top", 0), ("workers", 1)):
        v = config[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{key}: got {v!r}; allowed: an int >= {low}")
    share = config["anchor_share"]
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
        raise ValueError(f"anchor_share: got {share!r}; allowed: a number in [0, 1]")
    if config["top"] > config["samples"]:
        raise ValueError(f"top: got {config['top']}; allowed: at most samples={config['samples']}")
    if config["train_top"] > config["top"]:
        raise ValueError(f"train_top: got {config['train_top']}; allowed: at most "
                         f"top={config['top']}")
    config["profile"] = profile_name(config["profile"])
    resolve_profile(config["profile"])
    return config


def candidates(n: int, seed: int, spatial: bool, n_features: int, max_cost: float,
               anchor_share: float = 0.0) -> list:
    """``n`` distinct specs under the cost cap (deterministic for the seed): a share
    ``anchor_share`` of them are neighbours of the ``ts2vec`` preset (1 to 3 cells redrawn by
    :func:`search_spaces.mutate`, a warm start from the known baseline), the rest uniform
    random samples of the space. The last few lists are kept (a repeated query draws the
    same ones); the caller gets its own list."""
    return list(_candidates(n, seed, spatial, n_features, max_cost, anchor_share))


@functools.lru_cache(maxsize=8)
def _candidates(n: int, seed: int, spatial: bool, n_features: int, max_cost: float,
                anchor_share: float) -> tuple:
    rng, out = np.random.default_rng(seed), []
    anchor, n_anchored = ss.preset("ts2vec"), round(n * anchor_share)
    seen = {ss.spec_hash(anchor)} if n_anchored else set()  # a chain may mutate back to it
    while len(out) < n:
        if len(out) < n_anchored:
            spec = anchor
            for _ in range(int(rng.integers(1, 4))):
                spec = ss.mutate(spec, rng, spatial=spatial)
            if relative_cost(spec, n_features) > max_cost:
                continue
        else:
            spec = sample_capped(rng, spatial, n_features, max_cost)
        h = ss.spec_hash(spec)
        if h not in seen:
            seen.add(h)
            out.append(spec)
    return tuple(out)


#: Task features of recent tasks, keyed by the training split's bytes, shape, horizon and
#: univariate flag: a repeated query (a service answering many) skips the reference encoder.
_FEATURES: OrderedDict = OrderedDict()
_FEATURES_LOCK = threading.Lock()
FEATURE_CACHE_SIZE = 32


def cached_task_features(task, horizon: int) -> np.ndarray:
    """:func:`comparator.task_features.task_features` of ``task``'s training split (T, N)
    at ``horizon``, computed once per distinct task (deterministic, so a cached vector is the
    one a fresh computation gives)."""
    x = np.ascontiguousarray(task.x[:task.splits["train"][1], task.n_covariates:])
    key = (hashlib.sha256(x.tobytes()).hexdigest(), x.shape, str(x.dtype), horizon,
           bool(task.univariate))
    with _FEATURES_LOCK:
        if key in _FEATURES:
            _FEATURES.move_to_end(key)
            return _FEATURES[key]
    feature = task_features(x, horizon, task.univariate, load_reference())
    with _FEATURES_LOCK:
        _FEATURES[key] = feature
        while len(_FEATURES) > FEATURE_CACHE_SIZE:
            _FEATURES.popitem(last=False)
    return feature


def rank_task(task, horizon: int, config: dict, trained=None) -> dict:
    """Sample, featurise and rank candidates for ``task`` with ``trained`` = (model, meta)
    (default: loaded from ``config["weights"]``); -> {"top": [...], timings}."""
    timings, t0 = {}, time.perf_counter()
    model, meta = trained or load_trained(config["weights"])
    feat = standardise(cached_task_features(task, horizon), meta["norm"])
    timings["task_features_seconds"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    specs = candidates(config["samples"], config["seed"], len(task.inputs) > 1 and
                       not task.univariate, task.x.shape[1], config["max_cost"],
                       config["anchor_share"])
    timings["sample_seconds"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    scores = cp.rank(model, specs, feat)
    order = np.argsort(-scores, kind="stable")[:config["top"]]
    timings["rank_seconds"] = time.perf_counter() - t2
    timings["total_seconds"] = time.perf_counter() - t0
    top = [{"predicted_rank": i + 1, "score": float(scores[j]), "spec_hash": ss.spec_hash(specs[j]),
            "spec": specs[j]} for i, j in enumerate(order)]
    return {"data": task.name, "horizon": horizon, "n_candidates": len(specs), "top": top,
            **timings}


def train_top(task, horizon: int, result: dict, config: dict, run_dir) -> dict:
    """Train the top ``train_top`` specs (and ts2vec with ``compare_ts2vec``) on Ray, pick the
    best by validation MSE, and evaluate it (and ts2vec) once on the test split."""
    specs = [t["spec"] for t in result["top"][:config["train_top"]]]
    if config["compare_ts2vec"]:
        specs.append(ss.preset("ts2vec"))
    store = RunStore(run_dir)
    try:
        if store.get_config() is None:
            store.set_config({"data": task.name, "horizons": [horizon], "query": True})
        init_ray(config)
        runner = Search({**config, "horizons": [horizon]}, store, task)
        runner.run(specs, progress=False)
        rows = {r["spec_hash"]: r for r in store.trials()}
        picks = [rows[ss.spec_hash(s)] for s in specs[:config["train_top"]]]
        ok = [r for r in picks if r["status"] == "ok"]
        out = {"trained": [{"spec_hash": r["spec_hash"], "status": r["status"],
                            "val_mse": r["val_mse"]} for r in picks]}
        if ok:
            best = min(ok, key=lambda r: r["val_mse"])
            out["best"] = _test(runner, best)
        if config["compare_ts2vec"]:
            out["ts2vec"] = _test(runner, rows[ss.spec_hash(ss.preset("ts2vec"))])
        return out
    finally:
        store.close()


def _test(runner, row: dict) -> dict:
    """Retrain ``row``'s spec (same seed) and probe the test split: the explicit final
    evaluation; test rows are never read before it."""
    final = ray.get(runner.submit(row["trial"], row["spec"], test=True))
    final.pop("encoder", None)  # the trained learner's bytes: not kept by a query
    out = {"spec_hash": row["spec_hash"], "val_mse": row["val_mse"], "status": final["status"]}
    if final["status"] == "ok":
        out["test"] = {h: m["test"] for h, m in final["metrics"].items()}
    return out


def query(config: dict, run_dir=None, task=None) -> dict:
    """``ctsnas query`` as a function. ``task`` (a ForecastTask) overrides ``data``.

    Raises:
        ValueError: bad options, data, target or horizon, or no trained comparator --
            all before any ranking or training.
    """
    config = check_query(config)
    horizon = config["horizon"]
    if task is None:
        task = prepare(config["data"], config.get("data_dir"), config.get("target"),
                       config.get("univariate", False), [horizon], **load_options(config))
    trained = load_trained(config["weights"])  # fails early when no comparator is shipped
    result = rank_task(task, horizon, config, trained)
    if config["train_top"]:
        run_dir = Path(run_dir or f"runs/query-{task.name}-h{horizon}")
        result["train"] = train_top(task, horizon, result, config, run_dir)
        result["run_dir"] = str(run_dir)
    return result


def format_query(result: dict) -> str:
    """Human-readable query result."""
    lines = [(f"{result['data']} H={result['horizon']}: ranked {result['n_candidates']} "
              f"candidates in {result['total_seconds']:.1f} s (features "
              f"{result['task_features_seconds']:.1f} s, sampling "
              f"{result['sample_seconds']:.1f} s, ranking {result['rank_seconds']:.1f} s)")]
    for t in result["top"]:
        e = t["spec"]["Encoder"]
        lines.append(f"  #{t['predicted_rank']} {t['spec_hash'][:12]} score {t['score']:+.3f} "
                     f"cell {json.dumps(e['cell'])} x{e['layers']} H{e['hidden']} "
                     f"D{e['repr_dim']} {t['spec']['LossCell']['loss']}")
    train = result.get("train")
    if train and train.get("best"):
        b = train["best"]
        lines.append(f"best of the trained top: {b['spec_hash'][:12]} val MSE "
                     f"{b['val_mse']:.4f} test {json.dumps(b.get('test'))}")
    if train and train.get("ts2vec"):
        lines.append(f"ts2vec preset: test {json.dumps(train['ts2vec'].get('test'))}")
    return "\n".join(lines)
