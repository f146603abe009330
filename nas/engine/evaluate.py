"""Train one spec on a task and score it with the forecasting probe, with reference rows.

``evaluate`` is the explicit final evaluation (validation and test metrics); ``score_spec`` is
what a search trial runs (validation only: test rows are never read); ``train_encoder`` trains
and saves a :class:`~search_spaces.learner.ContrastiveLearner` (``ctsnas train``) and
``evaluate_encoder`` probes a saved one without training (``ctsnas evaluate --encoder``).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from sklearn.preprocessing import StandardScaler

import downstream as ds
import search_spaces as ss
from downstream.probes import check_features
from downstream.timefeatures import TIME_FEATURE_NAMES, time_features
from search_spaces import learner

from .memory import check_trial_memory


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
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise ValueError(f"arch: cannot read {path} as a JSON spec ({why})") from None
    ss.validate(spec)
    return spec


#: Options of :func:`downstream.load` a caller may pass through (``sort_dates``, ``dedupe``,
#: ``date_format``); a search stores them in its run config.
LOAD_OPTIONS = ("sort_dates", "dedupe", "date_format")


def load_options(options: dict | None) -> dict:
    """The :data:`LOAD_OPTIONS` of ``options`` (a config or kwargs), defaults left out."""
    return {k: options[k] for k in LOAD_OPTIONS if (options or {}).get(k)}


def load_task(data: str, data_dir=None, target=None, univariate: bool = False, horizons=(24,),
              padding: int = ds.PADDING, **options) -> tuple:
    """The raw series and its checked task: ``(SeriesData, ForecastTask)`` (all input errors
    surface here, before any training). ``options``: :data:`LOAD_OPTIONS`."""
    series = ds.load(data, data_dir, **load_options(options))
    task = ds.make_task(series, target=target, univariate=univariate)
    ds.check_horizons(task, horizons, padding)
    return series, task


def prepare(data: str, data_dir=None, target=None, univariate: bool = False, horizons=(24,),
            padding: int = ds.PADDING, **options) -> ds.ForecastTask:
    """Load and check a task before any training (all input errors surface here);
    ``options``: :data:`LOAD_OPTIONS`."""
    return load_task(data, data_dir, target, univariate, horizons, padding, **options)[1]


def raw_inputs(series: ds.SeriesData, task: ds.ForecastTask) -> tuple:
    """The encoder input of ``task`` before scaling, as :func:`downstream.make_task` builds
    ``task.x``: ``(blocks, names)``, blocks the calendar covariates (T, 7) float32 when the
    task has them, then the input variables (T, n) float64; names one per channel."""
    cols = [series.columns.index(c) for c in task.inputs]
    blocks, names = [], []
    if task.n_covariates:
        blocks.append(time_features(series.dates)[:len(task.x)])
        names += [f"calendar_{n}" for n in TIME_FEATURE_NAMES]
    blocks.append(series.values[:len(task.x), cols])
    names += list(task.inputs)
    return blocks, names


def input_scaling(series: ds.SeriesData, task: ds.ForecastTask) -> dict:
    """Per-channel scaling of the encoder input, ``{"mean", "std", "channels"}`` (C each):
    the StandardScaler statistics of the training rows of :func:`raw_inputs` (as
    :func:`downstream.make_task` computes them), so ``(raw - mean) / std`` gives ``task.x``."""
    blocks, names = raw_inputs(series, task)
    start, end = task.splits["train"]
    scalers = [StandardScaler().fit(block[start:end]) for block in blocks]
    return {"mean": np.concatenate([s.mean_ for s in scalers]).tolist(),
            "std": np.concatenate([s.scale_ for s in scalers]).tolist(), "channels": names}


def train_split(task: ds.ForecastTask):
    """The encoder's training input: rows of the training split, (1, T_train, C)."""
    start, end = task.splits["train"]
    return task.x[None, start:end]


def is_degenerate(curve) -> bool:
    """Whether a loss curve shows that nothing was learned: exactly 0.0 at every iteration
    (e.g. a contrast with a single item per group, whose loss is defined as 0 and has no
    gradient) or exactly the same value at every iteration of two or more. Free: reads the
    curve only. An empty curve (no step ran) is not called degenerate here."""
    curve = [float(v) for v in curve or []]
    if not curve:
        return False
    return all(v == 0.0 for v in curve) or (len(curve) > 1 and len(set(curve)) == 1)


def summarise_record(record: dict) -> dict:
    """A training record without its loss curve, plus ``final_loss`` (a copy) and
    ``degenerate`` (:func:`is_degenerate` of the curve)."""
    out = {k: v for k, v in record.items() if k != "loss_curve"}
    curve = record.get("loss_curve") or []
    out["final_loss"] = curve[-1] if curve else None
    out["degenerate"] = is_degenerate(curve)
    return out


def train_and_probe(spec: dict, task: ds.ForecastTask, horizons, profile="small", seed: int = 0,
                    test: bool = False, probe_stride: int = 1, scaling=None,
                    features: str = "repr") -> tuple:
    """Train ``spec`` on the training split and probe it: ``(learner, result)``, ``result``
    as :func:`score_spec`. Never raises for a diverged run."""
    check_features(features)
    model, record = learner.fit(spec, train_split(task), profile, seed=seed, scaling=scaling)
    out = {"status": record["status"], "train": summarise_record(record), "features": features}
    if record["status"] == "ok":
        out.update(ds.probe_encoder(model, task, horizons, test=test, stride=probe_stride,
                                    features=features))
    return model, out


def score_spec(spec: dict, task: ds.ForecastTask, horizons, profile="small", seed: int = 0,
               test: bool = False, probe_stride: int = 1, features: str = "repr") -> dict:
    """Train ``spec`` on the training split and probe it (every ``probe_stride``-th training
    sample, see :func:`downstream.probe_encoder`). Never raises for a diverged run.

    Returns a plain dict: ``status`` ("ok" or "diverged"), ``train`` (the training record
    without the loss curve, plus ``final_loss`` and ``degenerate``, see
    :func:`is_degenerate`), ``features`` (``repr`` or ``repr+raw``, see
    :func:`downstream.probe_encoder`), the probe result (``horizons``, ``val_mse``, timings)
    when training succeeded.
    """
    return train_and_probe(spec, task, horizons, profile, seed, test, probe_stride,
                           features=features)[1]


def random_encoder_probe(spec: dict, task: ds.ForecastTask, horizons, seed: int = 0,
                         test: bool = False, features: str = "repr") -> dict:
    """The probe of ``spec``'s encoder at its random initialisation (untrained, same ``seed``
    as a trained one), as :func:`downstream.probe_encoder`."""
    random_encoder = learner.ContrastiveLearner(spec, task.x.shape[1], seed=seed)
    return ds.probe_encoder(random_encoder, task, horizons, test=test, features=features)


def reference_rows(spec: dict, task: ds.ForecastTask, horizons, seed: int = 0,
                   test: bool = False, features: str = "repr") -> dict:
    """The probe's reference rows: raw lookback Ridge (no encoder) and the spec's randomly
    initialised, untrained encoder (probed with ``features``)."""
    return {"raw_lookback": ds.probe_lookback(task, horizons, test=test),
            "random_encoder": random_encoder_probe(spec, task, horizons, seed, test, features)}


def _head(task: ds.ForecastTask, univariate: bool, **extra) -> dict:
    return {"data": task.name, **extra, "univariate": univariate, "targets": task.targets,
            "n_inputs": int(task.x.shape[1]), "splits": task.splits}


def check_memory(spec: dict, task: ds.ForecastTask, horizons, profile, max_bytes,
                 references: bool, test: bool = True, features: str = "repr") -> None:
    """Pre-flight: refuse (before any work) a training + probe of ``spec``, or a raw-lookback
    reference probe, whose estimated peak memory exceeds ``max_bytes`` (None: no limit).

    Raises:
        downstream.ProbeMemoryError: (a ValueError ``max_bytes: ...``) naming estimate and limit.
    """
    n_inputs = task.x.shape[1] - task.n_covariates
    if profile is not None:
        check_trial_memory(spec, task, horizons, profile, max_bytes, test,
                           features=check_features(features))
    if profile is None:
        width = spec["Encoder"]["repr_dim"] + (ds.PADDING * n_inputs if features == "repr+raw"
                                               else 0)
        ds.check_probe_memory(task, horizons, width, max_bytes, test)
    if references:
        ds.check_probe_memory(task, horizons, ds.PADDING * n_inputs, max_bytes, test)


def evaluate(data: str, arch: str = "ts2vec", profile: str = "small", horizons=(24, 48),
             target=None, univariate: bool = False, data_dir=None, seed: int = 0,
             references: bool = True, max_bytes=None, features: str = "repr", **options) -> dict:
    """``ctsnas evaluate``: validation and test metrics per horizon, with timings and the
    reference rows. All inputs, and the memory estimate against ``max_bytes`` (see
    :func:`check_memory`), are checked before training starts; ``features``: the probe's
    features (``repr`` or ``repr+raw``, :func:`downstream.probe_encoder`); ``options``:
    :data:`LOAD_OPTIONS`.

    Raises:
        ValueError: unknown dataset / arch / profile, bad target or horizons, estimated
            memory over ``max_bytes``.
    """
    spec = load_arch(arch)
    learner.resolve_profile(profile)
    check_features(features)
    task = prepare(data, data_dir, target, univariate, horizons, **options)
    check_memory(spec, task, horizons, profile, max_bytes, references, features=features)
    start = time.perf_counter()
    result = _head(task, univariate, arch=arch, spec_hash=ss.spec_hash(spec), profile=profile,
                   seed=seed, features=features)
    result["model"] = score_spec(spec, task, horizons, profile, seed, test=True,
                                 features=features)
    if references:
        result["references"] = reference_rows(spec, task, horizons, seed, test=True,
                                              features=features)
    result["seconds"] = time.perf_counter() - start
    return result


def _check_out(out) -> Path:
    path = Path(out)
    if path.is_dir() or not path.parent.is_dir():
        raise ValueError(f"out: got {str(out)!r}; allowed: a file path in an existing folder")
    return path


def train_encoder(data: str, arch: str, out, profile: str = "small", horizons=(24, 48),
                  target=None, univariate: bool = False, data_dir=None, seed: int = 0,
                  max_bytes=None, features: str = "repr", **options) -> dict:
    """``ctsnas train``: train ``arch`` on the training split, save the learner (with the
    input scaling of the task) to ``out`` and probe it on the validation split with
    ``features`` (``repr`` or ``repr+raw``).

    Returns:
        {data, arch, spec_hash, profile, seed, ..., "out": path, "train": the record without
        its loss curve, "horizons": {H: {"alpha", "val"}}, "val_mse", "seconds"}.

    Raises:
        ValueError: bad dataset, arch, profile, target, horizons or ``out``, estimated memory
            over ``max_bytes`` (all before training); ``options``: :data:`LOAD_OPTIONS`.
    """
    spec = load_arch(arch)
    learner.resolve_profile(profile)
    path = _check_out(out)
    check_features(features)
    series, task = load_task(data, data_dir, target, univariate, horizons, **options)
    check_memory(spec, task, horizons, profile, max_bytes, references=False, test=False,
                 features=features)
    start = time.perf_counter()
    model, probe = train_and_probe(spec, task, horizons, profile, seed,
                                   scaling=input_scaling(series, task), features=features)
    model.save(path)
    result = _head(task, univariate, arch=arch, spec_hash=ss.spec_hash(spec), profile=profile,
                   seed=seed)
    result.update(out=str(path), **probe)
    result["seconds"] = time.perf_counter() - start
    return result


def _scaling_matches(saved, task_scaling: dict):
    if saved is None:
        return None
    return bool(np.allclose(saved["mean"], task_scaling["mean"], rtol=1e-6, atol=1e-9)
                and np.allclose(saved["std"], task_scaling["std"], rtol=1e-6, atol=1e-9))


def evaluate_encoder(data: str, encoder, horizons=(24, 48), target=None,
                     univariate: bool = False, data_dir=None, references: bool = True,
                     max_bytes=None, features: str = "repr", **options) -> dict:
    """``ctsnas evaluate --encoder``: probe a saved learner (no training): validation and test
    metrics per horizon, the reference rows (raw lookback and the spec's random encoder with
    the learner's seed) and ``input_scaling_matches`` (whether the task's input scaling is
    the one stored with the learner; None when it stored none).

    Raises:
        ValueError: unreadable encoder file, bad dataset/target/horizons, or a task whose
            number of input channels differs from the encoder's (before any probing).
    """
    check_features(features)
    model = learner.ContrastiveLearner.load(encoder)
    series, task = load_task(data, data_dir, target, univariate, horizons, **options)
    if task.x.shape[1] != model.n_features:
        raise ValueError(f"encoder: {encoder} expects C = {model.n_features} input channels; "
                         f"got {task.x.shape[1]} for {task.name} (calendar covariates "
                         f"included); allowed: data with the encoder's inputs")
    check_memory(model.spec, task, horizons, None, max_bytes, references, features=features)
    start = time.perf_counter()
    record = model.record or {}
    result = _head(task, univariate, encoder=str(encoder), spec_hash=ss.spec_hash(model.spec),
                   profile=record.get("profile"), seed=model.seed, features=features)
    result["input_scaling_matches"] = _scaling_matches(model.scaling, input_scaling(series, task))
    result["model"] = {"status": "ok", "train": summarise_record(record) if record else None,
                       **ds.probe_encoder(model, task, horizons, test=True, features=features)}
    if references:
        result["references"] = reference_rows(model.spec, task, horizons, model.seed, test=True,
                                              features=features)
    result["seconds"] = time.perf_counter() - start
    return result
