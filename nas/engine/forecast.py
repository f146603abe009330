"""Downstream online forecasting over a searched encoder (``ctsnas forecast``, the FSNet
family of :mod:`downstream.online`): the backbone is a saved contrastive encoder (pretrained)
or a spec's architecture (from scratch); everything else is the downstream protocol."""
from __future__ import annotations

import contextlib
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
             seed: int = 0, spec: dict | None = None) -> tuple:
    """``(module (B, L, C_in) -> (B, L, D), D, description)`` for the online forecaster.

    ``encoder``: a file saved by ``ctsnas train`` / a search (``best_encoder.pt``), used as
    the pretrained backbone; else ``arch`` (a preset or a JSON spec) built untrained with
    torch seed ``seed`` (or the given ``spec`` dict, likewise).

    Raises:
        ValueError: both or neither given, an unreadable encoder or spec, or an encoder whose
            input width differs from C_in (it must come from a multivariate run on data with
            the same variables, calendar covariates included).
    """
    if spec is not None:
        arch = None
    elif (arch is None) == (encoder is None):
        raise ValueError("encoder: give exactly one of --encoder PATH and --arch SPEC")
    if encoder is not None:
        saved = learner.ContrastiveLearner.load(encoder)
        if saved.n_features != n_features:
            raise ValueError(f"encoder: {encoder} takes {saved.n_features} input channels; the "
                             f"online task has {n_features} (calendar covariates + all "
                             "variables); allowed: an encoder from a multivariate run on the "
                             "same variables")
        return saved.net.train(), saved.repr_dim, f"pretrained {Path(encoder).name}"
    spec = spec if spec is not None else load_arch(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = learner.build_model(spec, n_features)
    return net, spec["Encoder"]["repr_dim"], f"untrained {arch or 'spec'}"


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
    ``[step, cumulative MSE]`` pairs, ``backbone``, ``references`` (static raw Ridge and last
    value on the same samples) and, with ``curve_png``, the PNG path.
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
    out.update(backbone=described, curve=thin(curve),
               references=online.protocol.reference_rows(task, horizon, split))
    if curve_png is not None:
        Path(curve_png).parent.mkdir(parents=True, exist_ok=True)
        online.plot_curves({f"{out['model']} ({described})": curve}, curve_png,
                           f"{task.name} H={horizon}, online {split} stream")
        out["curve_png"] = str(curve_png)
    return out


# --- online forecasting as a search objective (``ctsnas search --downstream fsnet``) ---

#: Search objectives: the Ridge probe (TS2Vec protocol), FSNet's online validation MSE, or
#: the mode-A validation MSE of Titans over the frozen encoder (:mod:`nas.engine.titans`).
DOWNSTREAMS = ("probe", "fsnet", "titans")


def check_downstream(config: dict) -> None:
    """Refuse options an online search cannot honour (before any work).

    Raises:
        ValueError: an unknown ``downstream``; with ``fsnet`` or ``titans``, ``univariate``,
            ``target`` (both forecast all variables) or probe features other than ``repr``.
    """
    value = config.get("downstream", "probe")
    if value not in DOWNSTREAMS:
        raise ValueError(f"downstream: got {value!r}; allowed: {list(DOWNSTREAMS)}")
    if value != "probe":
        for key in ("univariate", "target"):
            if config.get(key):
                raise ValueError(f"{key}: got {config[key]!r} with downstream={value}; "
                                 "allowed: left out (the forecaster takes and forecasts all "
                                 "variables)")
        if config.get("features", "repr") != "repr":
            raise ValueError(f"features: got {config['features']!r} with downstream={value}; "
                             "allowed: repr (this score uses no probe)")


def online_search_task(config: dict) -> ds.ForecastTask:
    """The online task of a search config, checked against every horizon."""
    task = online.online_task(ds.load(config["data"], config.get("data_dir"),
                                      **load_options(config)))
    for h in config["horizons"]:
        online.check_horizon(task, h)
    return task


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch threads (None: unchanged), restoring the count after.
    The driver of a search computes reference rows while its workers train: with torch's
    default (all cores) the small online steps oversubscribe the cores and slow down tenfold."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _online_horizons(net_of, repr_dim: int, task, horizons, seed: int, test: bool,
                     threads: int | None = None) -> dict:
    """FSNet over a fresh backbone per horizon and split: {"horizons": {H: {"val", ["test"]}},
    "val_mse": mean over H} as the probe reports it; ``net_of()`` builds the backbone."""
    with torch_threads(threads):
        return _online_runs(net_of, repr_dim, task, horizons, seed, test)


def _online_runs(net_of, repr_dim: int, task, horizons, seed: int, test: bool) -> dict:
    out = {}
    for h in horizons:
        out[h] = {}
        for split in ("val", "test") if test else ("val",):
            r = online.evaluate_online(net_of(), repr_dim, task, h, "fsnet", split, seed=seed)
            out[h][split] = {"mse": r["mse"], "mae": r["mae"], "n_samples": r["n_samples"],
                             "seconds": r["warmup_seconds"] + r["stream_seconds"]}
    return {"horizons": out, "val_mse": float(np.mean([out[h]["val"]["mse"] for h in out]))}


def train_and_online(spec: dict, task: ds.ForecastTask, horizons, profile="small",
                     seed: int = 0, test: bool = False) -> tuple:
    """Train ``spec`` contrastively on the online training split, then score its encoder as
    the pretrained FSNet backbone: warm-up on train, cumulative online MSE over the
    validation split (and the test stream with ``test``). ``(learner, result)`` shaped as
    :func:`~nas.engine.evaluate.train_and_probe`'s; never raises for a diverged run."""
    from .evaluate import summarise_record, train_split

    model, record = learner.fit(spec, train_split(task), profile, seed=seed)
    out = {"status": record["status"], "train": summarise_record(record), "features": "repr",
           "downstream": "fsnet"}
    if record["status"] == "ok":
        state = model.net.state_dict()

        def net_of():
            net = learner.build_model(spec, task.x.shape[1])
            net.load_state_dict(state)
            return net
        out.update(_online_horizons(net_of, model.repr_dim, task, horizons, seed, test))
        if not np.isfinite(out["val_mse"]):
            out.update(status="diverged", error="non-finite online forecasts (FSNet diverged "
                                                "over the encoder)")
    return model, out


def online_reference_rows(spec: dict, task: ds.ForecastTask, horizons, seed: int = 0,
                          test: bool = False, threads: int | None = None) -> dict:
    """Reference rows of an online search, shaped as
    :func:`~nas.engine.evaluate.reference_rows`: ``raw_lookback`` (a static Ridge on the raw
    window), ``last_value`` (persistence) and ``random_encoder`` (``spec``'s architecture
    untrained, seed ``seed``, as the FSNet backbone), computed with ``threads`` torch threads."""
    rows = {"raw_lookback": {}, "last_value": {}}
    for h in horizons:
        for split in ("val", "test") if test else ("val",):
            refs = online.protocol.reference_rows(task, h, split)
            for name, key in (("raw_lookback", "raw_ridge"), ("last_value", "last_value")):
                rows[name].setdefault(h, {})[split] = refs[key]
    out = {name: {"horizons": by_h,
                  "val_mse": float(np.mean([by_h[h]["val"]["mse"] for h in by_h]))}
           for name, by_h in rows.items()}
    out["random_encoder"] = random_online(spec, task, horizons, seed, test, threads)
    return out


def random_online(spec: dict, task: ds.ForecastTask, horizons, seed: int = 0,
                  test: bool = False, threads: int | None = None) -> dict:
    """``spec``'s encoder at its random initialisation (seed ``seed``) as the FSNet backbone,
    scored as :func:`train_and_online` scores a trained one."""
    return _online_horizons(lambda: backbone(task.x.shape[1], None, None, seed, spec)[0],
                            spec["Encoder"]["repr_dim"], task, horizons, seed, test, threads)
