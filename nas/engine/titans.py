"""Titans over a searched encoder (``ctsnas forecast --model titans``, ``ctsnas search
--downstream titans``): the MAC forecaster of :mod:`downstream.titans` on raw values, or on
the causal per-step representations of a frozen contrastive encoder."""
from __future__ import annotations

from pathlib import Path

import numpy as np

import downstream as ds
from downstream import longterm, titans
from search_spaces import learner

from .evaluate import load_options, summarise_record, train_split
from .forecast import thin, torch_threads

#: Titans training epochs of one search trial (the full schedule is titans.EPOCHS).
SEARCH_EPOCHS = 3


def load_titans_task(data: str, data_dir=None, horizon: int = 96, **options) -> ds.ForecastTask:
    """The multivariate task of a dataset name or CSV on its standard splits, checked against
    ``horizon`` before any work. ``options``: the load options of :func:`downstream.load`.

    Raises:
        ValueError: bad data or horizon.
    """
    task = ds.make_task(ds.load(data, data_dir, **load_options(options)), univariate=False)
    titans.check_horizon(task, horizon)
    return task


def check_search_task(task: ds.ForecastTask, horizons) -> ds.ForecastTask:
    """``task`` (a search's multivariate task) if every horizon leaves Titans a sample in each
    split (lookback 96).

    Raises:
        ValueError: ``horizon: ...`` naming the first horizon too long.
    """
    for h in horizons:
        titans.check_horizon(task, h)
    return task


def encoder_features(encoder: str, task: ds.ForecastTask) -> tuple:
    """``(features (T, D), description)``: the causal representations of every row by a saved
    encoder (frozen).

    Raises:
        ValueError: an unreadable file or an encoder whose input width differs from the task's.
    """
    saved = learner.ContrastiveLearner.load(encoder)
    if saved.n_features != task.x.shape[1]:
        raise ValueError(f"encoder: {encoder} takes {saved.n_features} input channels; the task "
                         f"has {task.x.shape[1]} (calendar covariates + all variables); "
                         "allowed: an encoder from a multivariate run on the same variables")
    return titans.causal_features(saved, task), f"frozen {Path(encoder).name}"


def run_titans(data: str, horizon: int, modes=("A",), data_dir=None, encoder: str | None = None,
               split: str = "test", seed: int = 0, epochs: int = titans.protocol.EPOCHS,
               curve_png=None, progress=None, linear_skip: bool = False, **options) -> dict:
    """Train Titans (raw input, or a saved encoder's representations), score ``modes`` on
    ``split``; returns :func:`downstream.titans.evaluate_titans`'s dict with curves thinned,
    ``input`` (what the model reads), ``references`` (the raw-lookback and RLinear-style
    Ridges on the same split's samples, :func:`downstream.titans.reference_rows`) and, with
    ``curve_png``, the PNG of the cumulative MSE per mode.
    ``linear_skip``: :class:`downstream.titans.TitansConfig`'s RLinear skip path.

    Raises:
        ValueError: bad data, horizon, mode, split or encoder (all before training).
    """
    for m in modes:
        titans.check_mode(m)
    if split not in ("val", "test"):
        raise ValueError(f"split: got {split!r}; allowed: ['val', 'test']")
    task = load_titans_task(data, data_dir, horizon, **options)
    features, described = (None, "raw values") if encoder is None else encoder_features(encoder,
                                                                                         task)
    out = titans.evaluate_titans(task, horizon, modes, split, features,
                                 titans.TitansConfig(linear_skip=linear_skip), epochs=epochs,
                                 seed=seed, progress=progress)
    curves = {m: r.pop("curve") for m, r in out["modes"].items()}
    for m, r in out["modes"].items():
        r["curve"] = thin(curves[m])
    out.update(input=described, references=titans.reference_rows(task, horizon, split))
    if curve_png is not None:
        from downstream.online import plot_curves

        Path(curve_png).parent.mkdir(parents=True, exist_ok=True)
        plot_curves({f"mode {m}": c for m, c in curves.items()}, curve_png,
                    f"{task.name} H={horizon}: Titans, cumulative MSE over the {split} split")
        out["curve_png"] = str(curve_png)
    return out


def _titans_horizons(features, task, horizons, seed: int, test: bool) -> dict:
    """Mode-A Titans per horizon on ``features`` (None: raw values), :data:`SEARCH_EPOCHS`
    epochs, shaped as the probe's result: {"horizons": {H: {"val", ["test"]}}, "val_mse": mean
    over H}. The validation figures are those of the kept (best) epoch."""
    out = {}
    for h in horizons:
        r = titans.evaluate_titans(task, h, ("A",), "test" if test else "val", features,
                                   epochs=SEARCH_EPOCHS, seed=seed)
        train, best = r["train"], r["train"]["best_epoch"]
        nan = float("nan")
        out[h] = {"val": {"mse": nan if best is None else train["val_mse"][best],
                          "mae": nan if best is None else train["val_mae"][best],
                          "epoch_seconds": train["epoch_seconds"]}}
        if test:
            row = r["modes"]["A"]
            out[h]["test"] = {k: row[k] for k in ("mse", "mae", "n_samples")}
    return {"horizons": out, "val_mse": float(np.mean([out[h]["val"]["mse"] for h in out]))}


def train_and_titans(spec: dict, task: ds.ForecastTask, horizons, profile="small",
                     seed: int = 0, test: bool = False) -> tuple:
    """Train ``spec`` contrastively on the training split, then score its frozen encoder as
    Titans' input: mode-A MSE on the validation split (and the test split with ``test``),
    :data:`SEARCH_EPOCHS` epochs per horizon. ``(learner, result)`` shaped as
    :func:`~nas.engine.evaluate.train_and_probe`'s; never raises for a diverged run."""
    model, record = learner.fit(spec, train_split(task), profile, seed=seed)
    out = {"status": record["status"], "train": summarise_record(record), "features": "repr",
           "downstream": "titans"}
    if record["status"] == "ok":
        out.update(_titans_horizons(titans.causal_features(model, task), task, horizons, seed,
                                    test))
        if not np.isfinite(out["val_mse"]):
            out.update(status="diverged", error="non-finite Titans forecasts over the encoder")
    return model, out


def titans_reference_rows(spec: dict, task: ds.ForecastTask, horizons, seed: int = 0,
                          test: bool = False, threads: int | None = None) -> dict:
    """Reference rows of a Titans search, shaped as :func:`~nas.engine.evaluate.reference_rows`:
    ``raw_lookback`` (Ridge on the 96-step window), ``raw_titans`` (Titans on raw values) and
    ``random_encoder`` (``spec``'s encoder untrained, seed ``seed``, as Titans' input)."""
    rows = {}
    with torch_threads(threads):
        ridge = {h: {split: longterm.raw_ridge(task, h, split)
                     for split in (("val", "test") if test else ("val",))} for h in horizons}
        rows["raw_lookback"] = {"horizons": ridge, "val_mse": float(
            np.mean([ridge[h]["val"]["mse"] for h in horizons]))}
        rows["raw_titans"] = _titans_horizons(None, task, horizons, seed, test)
    rows["random_encoder"] = random_titans(spec, task, horizons, seed, test, threads)
    return rows


def random_titans(spec: dict, task: ds.ForecastTask, horizons, seed: int = 0,
                  test: bool = False, threads: int | None = None) -> dict:
    """``spec``'s encoder at its random initialisation (seed ``seed``) as Titans' input,
    scored as :func:`train_and_titans` scores a trained one."""
    with torch_threads(threads):
        untrained = learner.ContrastiveLearner(spec, task.x.shape[1], seed=seed)
        return _titans_horizons(titans.causal_features(untrained, task), task, horizons, seed,
                                test)
