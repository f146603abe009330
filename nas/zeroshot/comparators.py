"""Comparator training and leave-one-dataset-out evaluation over the seed records.

``ctsnas comparator train`` fits T-AHC on every record and writes its weights where it is told
(the shipped ones in ``comparator/weights`` are read only); ``ctsnas comparator evaluate``
holds out one source dataset at a time and reports Kendall tau and the top-5% hit rate on its
tasks for T-AHC and the baselines (random, parameter count, flat one-hot MLP, the graph model
without task features). Task features: :mod:`nas.zeroshot.features`.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

import comparator as cp
from comparator.baselines import flat_scores, train_flat_mlp
from comparator.task_features import META_NAMES
from search_spaces.learner.storage import write_atomic

#: The shipped comparator (read only: training writes to the folder it is given).
WEIGHTS_DIR = Path(cp.__file__).parent / "weights"
METHODS = ("random", "n_params", "flat_mlp", "graph_no_task", "tahc")
TRAIN_DEFAULTS = {"epochs": 30, "pairs_per_task": 256, "seed": 0}


def normaliser(features: dict, task_ids) -> dict:
    """Mean and std (std 1 where constant) of the features of ``task_ids``."""
    m = np.array([features[t] for t in sorted(set(task_ids))], dtype=np.float64)
    std = m.std(axis=0)
    return {"mean": m.mean(axis=0).tolist(), "std": np.where(std > 0, std, 1.0).tolist()}


def standardise(vec, norm: dict) -> np.ndarray:
    return ((np.asarray(vec) - norm["mean"]) / norm["std"]).astype(np.float32)


def fit_tahc(records: list, features: dict, use_task: bool = True, **kw) -> tuple:
    """T-AHC on ``records``, task features standardised over their tasks -> (model, norm)."""
    kw = {**TRAIN_DEFAULTS, **kw}
    norm = normaliser(features, [r["task_id"] for r in records])
    feats = {t: standardise(features[t], norm) for t in {r["task_id"] for r in records}}
    model, _ = cp.train_tahc(records, feats if use_task else None, use_task=use_task, **kw)
    return model, norm


def train(records: list, features: dict, out_dir, **kw) -> dict:
    """Fit T-AHC on all records and write ``tahc.pt`` and ``tahc.json`` (feature
    standardisation, names, datasets seen, counts) into ``out_dir`` (created if needed)."""
    start = time.perf_counter()
    model, norm = fit_tahc(records, features, **kw)
    return save_comparator(model, norm, records, out_dir, time.perf_counter() - start, kw)


def save_comparator(model, norm: dict, records: list, out_dir, seconds: float, kw: dict) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cp.save(model, out_dir / "tahc.pt")
    meta = {"norm": norm, "feature_names": list(META_NAMES) + ["reference_embedding"],
            "datasets": sorted({r["dataset"] for r in records}), "n_records": len(records),
            "n_tasks": len({r["task_id"] for r in records}), "train": {**TRAIN_DEFAULTS, **kw},
            "seconds": seconds}
    write_atomic(json.dumps(meta, indent=2).encode(), out_dir / "tahc.json")
    return meta


def load_trained(weights_dir=WEIGHTS_DIR) -> tuple:
    """(T-AHC model, meta) saved in ``weights_dir`` (default: the shipped comparator).

    Raises:
        ValueError: no trained comparator there (``tahc.pt`` or ``tahc.json`` missing), or a
            truncated / corrupted file, naming it.
    """
    weights_dir = Path(weights_dir)
    for name in ("tahc.pt", "tahc.json"):
        if not (weights_dir / name).is_file():
            raise ValueError(f"weights: no trained comparator in {weights_dir} (no {name}); "
                             "allowed: a folder written by comparator training (train)")
    path = weights_dir / "tahc.pt"
    try:
        model = cp.load(path)
        path = weights_dir / "tahc.json"
        meta = json.loads(path.read_text(encoding="utf-8"))
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged file
        raise ValueError(f"weights: cannot read {path} ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:160] if str(exc) else ''}); allowed: "
                         "a folder written by comparator training (train)") from None
    return model, meta


def kendall(scores, mse) -> float:
    """Kendall tau between predicted scores (higher = better) and -MSE."""
    return float(kendalltau(scores, -np.asarray(mse)).statistic)


def hit_rate(scores, mse, frac: float = 0.05) -> float:
    """Share of the predicted top ``frac`` (at least one) that is in the true top ``frac``."""
    k = max(1, math.ceil(frac * len(mse)))
    pred = set(np.argsort(-np.asarray(scores), kind="stable")[:k])
    true = set(np.argsort(np.asarray(mse), kind="stable")[:k])
    return len(pred & true) / k


def _group(records: list) -> dict:
    out = {}
    for r in records:
        out.setdefault(r["task_id"], []).append(r)
    return out


def _method_scores(train_recs: list, features: dict, seed: int, save_to=None, **kw) -> dict:
    """method -> function(task records, task features) -> scores, fitted on ``train_recs``
    (the T-AHC weights are written to ``save_to`` when given)."""
    tahc, norm = fit_tahc(train_recs, features, seed=seed, **kw)
    if save_to:
        save_comparator(tahc, norm, train_recs, save_to, 0.0, {"seed": seed, **kw})
    blind, _ = fit_tahc(train_recs, features, use_task=False, seed=seed, **kw)
    flat = train_flat_mlp(train_recs, seed=seed)
    groups = _group(train_recs).values()
    sign = np.sign(np.nanmean([kendall([r["n_params"] for r in g], [r["val_mse"] for r in g])
                               for g in groups])) or 1.0
    rng = np.random.default_rng(seed)
    return {
        "random": lambda recs, f: rng.permutation(len(recs)).astype(float),
        "n_params": lambda recs, f: sign * np.array([r["n_params"] for r in recs], float),
        "flat_mlp": lambda recs, f: flat_scores(flat, [r["spec"] for r in recs]),
        "graph_no_task": lambda recs, f: cp.rank(blind, [r["spec"] for r in recs]),
        "tahc": lambda recs, f: cp.rank(tahc, [r["spec"] for r in recs], standardise(f, norm)),
    }


def evaluate(records: list, features: dict, seed: int = 0, random_draws: int = 20,
             progress=print, weights_dir=None, **kw) -> dict:
    """Leave-one-dataset-out: per held-out dataset, every method's Kendall tau and top-5% hit
    rate on each of its tasks (random: mean over ``random_draws`` permutations). With
    ``weights_dir`` each held-out T-AHC is saved to ``weights_dir/holdout-<dataset>``.
    -> {"tasks": [per task rows], "summary": {method: {"tau", "hit"}}}."""
    rows = []
    for ds_name in sorted({r["dataset"] for r in records}):
        start = time.perf_counter()
        train_recs = [r for r in records if r["dataset"] != ds_name]
        save_to = Path(weights_dir) / f"holdout-{ds_name}" if weights_dir else None
        methods = _method_scores(train_recs, features, seed, save_to, **kw)
        for tid, recs in sorted(_group([r for r in records if r["dataset"] == ds_name]).items()):
            mse = [r["val_mse"] for r in recs]
            row = {"dataset": ds_name, "task_id": tid, "n_specs": len(recs)}
            for name, fn in methods.items():
                draws = random_draws if name == "random" else 1
                s = [fn(recs, features[tid]) for _ in range(draws)]
                row[name] = {"tau": float(np.mean([kendall(x, mse) for x in s])),
                             "hit": float(np.mean([hit_rate(x, mse) for x in s]))}
            rows.append(row)
        if progress:
            progress(f"held out {ds_name}: {time.perf_counter() - start:.0f} s")
    summary = {m: {k: float(np.mean([r[m][k] for r in rows])) for k in ("tau", "hit")}
               for m in METHODS}
    return {"tasks": rows, "summary": summary}


def format_evaluation(result: dict) -> str:
    """The leave-one-dataset-out table: per dataset and overall, tau / hit per method."""
    head = f"{'held-out dataset':<16}" + "".join(f"{m:>22}" for m in METHODS)
    lines = [head, f"{'':<16}" + "".join(f"{'tau   top5% hit':>22}" for _ in METHODS)]
    for ds_name in sorted({r["dataset"] for r in result["tasks"]}):
        rows = [r for r in result["tasks"] if r["dataset"] == ds_name]
        cells = "".join(f"{np.mean([r[m]['tau'] for r in rows]):>13.3f}"
                        f"{np.mean([r[m]['hit'] for r in rows]):>9.2f}" for m in METHODS)
        lines.append(f"{ds_name:<16}{cells}")
    s = result["summary"]
    lines.append(f"{'mean':<16}" + "".join(f"{s[m]['tau']:>13.3f}{s[m]['hit']:>9.2f}"
                                           for m in METHODS))
    return "\n".join(lines)
