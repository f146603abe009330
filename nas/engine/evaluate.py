"""Train one spec on a task and score it with the forecasting probe, with reference rows.

``evaluate`` is the explicit final evaluation (validation and test metrics); ``score_spec`` is
what a search trial runs (validation only: test rows are never read).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

import downstream as ds
import search_spaces as ss
from search_spaces import learner


def load_arch(arch: str) -> dict:
    """A preset name or a JSON spec file -> a validated spec.

    Raises:
        ValueError: neither a preset nor a readable JSON file, or an invalid spec.
    """
    if arch in ss.PRESETS:
        return ss.preset(arch)
    path = Path(arch)
    if not path.is_file():
        raise ValueError(f"arch: got {arch!r}; allowed: a preset {sorted(ss.PRESETS)} or a "
                         "JSON spec file")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"arch: cannot read {path} as a JSON spec ({exc})") from None
    ss.validate(spec)
    return spec


def prepare(data: str, data_dir=None, target=None, univariate: bool = False, horizons=(24,),
            padding: int = ds.PADDING) -> ds.ForecastTask:
    """Load and check a task before any training (all input errors surface here)."""
    task = ds.make_task(ds.load(data, data_dir), target=target, univariate=univariate)
    ds.check_horizons(task, horizons, padding)
    return task


def train_split(task: ds.ForecastTask):
    """The encoder's training input: rows of the training split, (1, T_train, C)."""
    start, end = task.splits["train"]
    return task.x[None, start:end]


def score_spec(spec: dict, task: ds.ForecastTask, horizons, profile="small", seed: int = 0,
               test: bool = False, probe_stride: int = 1) -> dict:
    """Train ``spec`` on the training split and probe it (every ``probe_stride``-th training
    sample, see :func:`downstream.probe_encoder`). Never raises for a diverged run.

    Returns a plain dict: ``status`` ("ok" or "diverged"), ``train`` (the training record
    without the loss curve, plus ``final_loss``), the probe result (``horizons``,
    ``val_mse``, timings) when training succeeded.
    """
    encoder, record = learner.fit(spec, train_split(task), profile, seed=seed)
    curve = record.pop("loss_curve")
    record["final_loss"] = curve[-1] if curve else None
    out = {"status": record["status"], "train": record}
    if record["status"] == "ok":
        out.update(ds.probe_encoder(encoder, task, horizons, test=test, stride=probe_stride))
    return out


def reference_rows(spec: dict, task: ds.ForecastTask, horizons, seed: int = 0,
                   test: bool = False) -> dict:
    """The probe's reference rows: raw lookback Ridge (no encoder) and the spec's randomly
    initialised, untrained encoder."""
    torch.manual_seed(seed)
    random_encoder = learner.Encoder(learner.build_model(spec, task.x.shape[1]), spec)
    return {"raw_lookback": ds.probe_lookback(task, horizons, test=test),
            "random_encoder": ds.probe_encoder(random_encoder, task, horizons, test=test)}


def evaluate(data: str, arch: str, profile: str = "small", horizons=(24, 48), target=None,
             univariate: bool = False, data_dir=None, seed: int = 0,
             references: bool = True) -> dict:
    """``ctsnas evaluate``: validation and test metrics per horizon, with timings and the
    reference rows. All inputs are checked before training starts.

    Raises:
        ValueError: unknown dataset / arch / profile, bad target or horizons.
    """
    spec = load_arch(arch)
    learner.resolve_budget(profile)
    task = prepare(data, data_dir, target, univariate, horizons)
    start = time.perf_counter()
    result = {"data": task.name, "arch": arch, "spec_hash": ss.spec_hash(spec),
              "profile": profile, "seed": seed, "univariate": univariate,
              "targets": task.targets, "n_inputs": int(task.x.shape[1]),
              "splits": task.splits, "model": score_spec(spec, task, horizons, profile, seed,
                                                        test=True)}
    if references:
        result["references"] = reference_rows(spec, task, horizons, seed, test=True)
    result["seconds"] = time.perf_counter() - start
    return result
