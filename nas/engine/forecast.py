"""Downstream online forecasting over a searched encoder (``ctsnas forecast``, the FSNet
family of :mod:`downstream.online`): the backbone is a saved contrastive encoder (pretrained)
or a spec's architecture (from scratch); everything else is the downstream protocol."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import downstream as ds
from downstream import online
from search_spaces import learner

from .evaluate import load_arch, load_options

#: Points kept of a cumulative-MSE curve in JSON outputs (the PNG uses every step).
CURVE_POINTS = 200


def backbone(n_features: int, arch: str | None = "ts2vec", encoder: str | None = None,
             seed: int = 0) -> tuple:
    """``(module (B, L, C_in) -> (B, L, D), D, description)`` for the online forecaster.

    ``encoder``: a file saved by ``ctsnas train`` / a search (``best_encoder.pt``), used as
    the pretrained backbone; else ``arch`` (a preset or a JSON spec) built untrained with
    torch seed ``seed``.

    Raises:
        ValueError: both or neither given, an unreadable encoder or spec, or an encoder whose
            input width differs from C_in (it must come from a multivariate run on data with
            the same variables, calendar covariates included).
    """
    if (arch is None) == (encoder is None):
        raise ValueError("encoder: give exactly one of --encoder PATH and --arch SPEC")
    if encoder is not None:
        saved = learner.ContrastiveLearner.load(encoder)
        if saved.n_features != n_features:
            raise ValueError(f"encoder: {encoder} takes {saved.n_features} input channels; the "
                             f"online task has {n_features} (calendar covariates + all "
                             "variables); allowed: an encoder from a multivariate run on the "
                             "same variables")
        return saved.net.train(), saved.repr_dim, f"pretrained {Path(encoder).name}"
    spec = load_arch(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = learner.build_model(spec, n_features)
    return net, spec["Encoder"]["repr_dim"], f"untrained {arch}"


def load_online_task(data: str, data_dir=None, horizon: int = 24, **options) -> ds.ForecastTask:
    """The online task of a dataset name or CSV, checked against ``horizon`` before any work."""
    task = online.online_task(ds.load(data, data_dir, **load_options(options)))
    online.check_horizon(task, horizon)
    return task


def thin(curve: np.ndarray, points: int = CURVE_POINTS) -> list:
    """``points`` evenly spaced values of a curve (its last value included), as floats."""
    idx = np.unique(np.linspace(0, len(curve) - 1, min(points, len(curve))).round().astype(int))
    return [[int(i) + 1, float(curve[i])] for i in idx]


def run_forecast(data: str, model: str, horizon: int, data_dir=None, arch: str | None = None,
                 encoder: str | None = None, split: str = "test", seed: int = 0,
                 memory_read: str | None = None, label_delay: bool = True,
                 epochs: int = online.protocol.WARMUP_EPOCHS, curve_png=None,
                 progress=None, **options) -> dict:
    """Build the backbone, warm up, stream ``split``; returns the metrics dict of
    :func:`downstream.online.evaluate_online` with ``curve`` thinned to :data:`CURVE_POINTS`
    ``[step, cumulative MSE]`` pairs, ``backbone`` and, with ``curve_png``, the PNG path.
    ``options``: :data:`~nas.engine.evaluate.LOAD_OPTIONS` of the data file.

    Raises:
        ValueError: bad data, horizon, model, read rule, backbone (all before training).
    """
    online.variant(model, memory_read)
    task = load_online_task(data, data_dir, horizon, **options)
    arch = arch if arch is not None or encoder is not None else "ts2vec"
    net, repr_dim, described = backbone(task.x.shape[1], arch, encoder, seed)
    out = online.evaluate_online(net, repr_dim, task, horizon, model, split, memory_read,
                                 epochs=epochs, seed=seed, label_delay=label_delay,
                                 progress=progress)
    curve = out.pop("curve")
    out.update(backbone=described, curve=thin(curve))
    if curve_png is not None:
        Path(curve_png).parent.mkdir(parents=True, exist_ok=True)
        online.plot_curves({f"{out['model']} ({described})": curve}, curve_png,
                           f"{task.name} H={horizon}, online {split} stream")
        out["curve_png"] = str(curve_png)
    return out
