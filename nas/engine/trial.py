"""One search trial, as run inside a Ray worker: train a spec, score it with the validation probe.

Everything crossing the process boundary is a plain dict: the task goes in as
``dataclasses.asdict(task)`` and the trial comes back as a run-store row.
"""
from __future__ import annotations

import socket
import time
import traceback
from importlib import metadata

import torch

import downstream as ds
import search_spaces as ss

from .evaluate import train_and_probe
from .forecast import train_and_online
from .titans import train_and_titans
from .memory import estimate_trial_bytes, gib

PACKAGES = ("ctsnas", "torch", "numpy", "scikit-learn", "pandas", "ray")


def package_versions() -> dict:
    """Versions of the packages a result depends on (on the machine that ran the trial)."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def node_name() -> str:
    """The Ray node id when running under Ray, else the host name."""
    try:
        import ray

        if ray.is_initialized():
            return f"{socket.gethostname()}:{ray.get_runtime_context().get_node_id()[:12]}"
    except Exception:  # noqa: BLE001 - the node name is informative only
        pass
    return socket.gethostname()


def run_trial(index: int, spec: dict, task: dict, horizons: list, profile, seed: int,
              threads: int = 1, test: bool = False, probe_stride: int = 1,
              features: str = "repr", downstream: str = "probe") -> dict:
    """Train and probe one spec (probe ``features``: ``repr`` or ``repr+raw``, see
    :func:`downstream.probe_encoder`), or with ``downstream="fsnet"`` score its encoder as
    the FSNet backbone by the online validation MSE
    (:func:`~nas.engine.forecast.train_and_online`), or with ``downstream="titans"`` as
    Titans' frozen input by the mode-A validation MSE
    (:func:`~nas.engine.titans.train_and_titans`); never raises for a failing or diverging
    spec.

    Returns a run-store row: ``status`` is "ok", "degenerate" (trained and probed, but the
    loss curve shows nothing was learned: :func:`~nas.engine.evaluate.is_degenerate`; it
    keeps its ``val_mse`` and metrics and never wins a leaderboard), "diverged" (NaN/inf
    loss), "out_of_memory"
    (a MemoryError; see also :func:`memory_request`) or "failed" (an
    exception, whose traceback tail is in ``error``); ``val_mse`` is the search score. With
    ``test`` (the final evaluation of the best spec) the metrics include the test split and
    an "ok" row also holds ``encoder``: the trained learner as the bytes of its saved file
    (:meth:`~search_spaces.learner.ContrastiveLearner.to_bytes`; the worker may be on
    another node), not meant for the run store.
    """
    torch.set_num_threads(threads)
    start = time.perf_counter()
    row = {"trial": index, "spec_hash": ss.spec_hash(spec), "spec": spec, "seed": seed,
           "node": node_name(), "versions": package_versions(), "error": None}
    try:
        if downstream in ("fsnet", "titans"):
            score = train_and_online if downstream == "fsnet" else train_and_titans
            model, result = score(spec, ds.ForecastTask(**task), horizons, profile, seed,
                                  test=test)
        else:
            model, result = train_and_probe(spec, ds.ForecastTask(**task), horizons, profile,
                                            seed, test=test, probe_stride=probe_stride,
                                            features=features)
        row["n_params"] = result["train"]["n_params"]
        if result["status"] == "ok":
            degenerate = result["train"]["degenerate"]
            row.update(status="degenerate" if degenerate else "ok", val_mse=result["val_mse"],
                       metrics={str(h): r for h, r in result["horizons"].items()})
            if degenerate:
                row["error"] = (f"degenerate training: loss {result['train']['final_loss']} "
                                "constant over the curve (no gradient)")
            if test:
                row["encoder"] = model.to_bytes()
        else:
            row.update(status="diverged", error=result.get("error") or "non-finite loss at "
                       f"iteration {result['train']['n_iters']}")
    except MemoryError as exc:
        row.update(status="out_of_memory", error=f"MemoryError: {exc}"[:4000])
    except Exception:  # noqa: BLE001 - any trial error is recorded, the search goes on
        row.update(status="failed", error=traceback.format_exc(limit=6)[-4000:])
    row["seconds"] = time.perf_counter() - start
    return row


def largest_node_memory() -> float | None:
    """The largest ``memory`` resource of a live Ray node (bytes), None without Ray."""
    import ray

    if not ray.is_initialized():
        return None
    sizes = [n["Resources"].get("memory", 0) for n in ray.nodes() if n.get("Alive")]
    return max(sizes, default=None)


def memory_request(spec: dict, lane: dict, profile, max_bytes, index: int,
                   test: bool = False, features: str = "repr") -> tuple:
    """The pre-flight of one trial on a search lane (``task``, ``horizons``, ``seed``,
    ``probe_stride``): ``(bytes to request from Ray or None, None)``, or ``(None, row)``
    with an ``out_of_memory`` run-store row (the estimate and the limit in ``error``) when
    :func:`~nas.engine.memory.estimate_trial_bytes` exceeds ``max_bytes``. The request is
    capped at the largest node's memory so that Ray can always place the trial."""
    try:
        estimate = estimate_trial_bytes(spec, lane["task"], lane["horizons"], profile, test,
                                        lane["probe_stride"], features)
    except (ValueError, KeyError, TypeError):  # the trial itself reports a bad spec or task
        return None, None
    if max_bytes is not None and estimate > max_bytes:
        return None, {"trial": index, "spec_hash": ss.spec_hash(spec), "spec": spec,
                      "seed": lane["seed"], "status": "out_of_memory", "seconds": 0.0,
                      "node": None, "versions": None,
                      "error": f"estimated peak memory {gib(estimate)} > max_memory "
                               f"{gib(max_bytes)}; not run"}
    node = largest_node_memory()
    return (int(min(estimate, node)) if node else None), None
