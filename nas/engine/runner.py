"""The distributed search: plan specs, run trials as Ray tasks, stream results into the store.

Trials are taken in completion order (``ray.wait``) with at most one per worker slot in
flight. A worker process that dies is retried by Ray (``max_retries``); an exception or a
divergence inside a trial comes back as a failed row; a trial past its time limit is cancelled
and recorded as timed out. Every finished trial is written at once, so ``resume`` after a
killed driver re-runs nothing that completed.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import ray
from tqdm import tqdm

import search_spaces as ss
from search_spaces import learner

from .evaluate import prepare
from .store import DB_NAME, RunStore
from .trial import run_trial

#: Config keys that define a run (a resumed run must not change them).
PLAN_KEYS = ("data", "data_dir", "target", "univariate", "horizons", "budget", "profile", "seed",
             "extra_specs")
DEFAULTS = {"data_dir": None, "target": None, "univariate": False, "horizons": [24, 48],
            "extra_specs": [],
            "profile": "small", "seed": 0, "workers": 1, "cpus_per_trial": 1,
            "trial_timeout": None, "max_retries": 3, "address": None}


def plan_specs(budget: int, seed: int, spatial: bool, extra: list = ()) -> list:
    """The ``ts2vec`` preset, the user's ``extra`` specs, then distinct sampled specs (by hash)
    up to ``budget`` specs; deterministic for the seed."""
    specs, seen = [], set()
    for spec in [ss.preset("ts2vec"), *extra]:
        if ss.spec_hash(spec) not in seen:
            seen.add(ss.spec_hash(spec))
            specs.append(spec)
    rng = np.random.default_rng(seed)
    while len(specs) < budget:
        spec = ss.sample(rng, spatial=spatial)
        if ss.spec_hash(spec) not in seen:
            seen.add(ss.spec_hash(spec))
            specs.append(spec)
    return specs[:budget]


def check_config(config: dict) -> dict:
    """Fill defaults and refuse bad input before Ray starts.

    Raises:
        ValueError: unknown dataset, bad target or horizons, budget < 1, unknown profile,
            workers / cpus_per_trial < 1, non-positive trial timeout.
    """
    unknown = set(config) - set(DEFAULTS) - {"data", "budget"}
    if unknown:
        raise ValueError(f"search: unknown option {sorted(unknown)[0]!r}")
    if not config.get("data"):
        raise ValueError("--data: required; allowed: a dataset name (ctsnas datasets) or a CSV path")
    config = {**DEFAULTS, **config}
    budget = config.get("budget")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"--budget: got {budget!r}; allowed: an int >= 1")
    learner.resolve_budget(config["profile"])
    for key in ("workers", "cpus_per_trial"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')}: got {config[key]!r}; allowed: an int >= 1")
    for i, spec in enumerate(config["extra_specs"]):
        try:
            ss.validate(spec)
        except ValueError as exc:
            raise ValueError(f"--spec: spec {i + 1}: {exc}") from None
    if config["trial_timeout"] is not None and config["trial_timeout"] <= 0:
        raise ValueError(f"--trial-timeout: got {config['trial_timeout']!r}; allowed: seconds > 0")
    return config


def merge_stored(run_dir, given: dict, resume: bool) -> dict:
    """The user's options merged with the config stored in ``run_dir`` (if any).

    Raises:
        ValueError: the directory holds another run and ``resume`` is False, or ``resume``
            given a plan option (data, horizons, budget, profile, seed, ...) that differs.
    """
    path = Path(run_dir) / DB_NAME
    stored = None
    if path.exists():
        store = RunStore(run_dir)
        stored = store.get_config()
        store.close()
    if stored is None:
        return given
    if not resume:
        raise ValueError(f"--run-dir: {run_dir} already holds a run ({stored['data']}, budget "
                         f"{stored['budget']}); pass --resume to continue it or pick a new "
                         "directory")
    for key in PLAN_KEYS:
        if key in given and given[key] != stored[key]:
            raise ValueError(f"--resume: {key} is {given[key]!r} but the run has "
                             f"{stored[key]!r}; allowed: the run's own value (or omit it)")
    return {**given, **stored}


def _unfinished_row(index: int, spec: dict, seed: int, seconds: float, why: str) -> dict:
    return {"trial": index, "spec_hash": ss.spec_hash(spec), "spec": spec, "seed": seed,
            "status": why, "seconds": seconds, "error": f"{why} after {seconds:.0f} s"}


class Search:
    """Runs planned trials on Ray, writing each to its store as it finishes.

    A search has one *lane* (its task, store, horizons and seed); seed generation adds one lane
    per task slice (:meth:`add_lane`) and runs jobs of every lane in one pool, so no worker
    idles at a task boundary.
    """

    def __init__(self, config: dict, store: RunStore, task, trial_fn=run_trial):
        self.config, self.store, self.task = config, store, task
        self.remote = ray.remote(trial_fn).options(num_cpus=config["cpus_per_trial"],
                                                   max_retries=config["max_retries"],
                                                   retry_exceptions=False)
        self.lanes = {}
        if store is not None:
            self.add_lane(None, store, task, config["horizons"], config["seed"])
        self.slots = max(1, int(ray.cluster_resources().get("CPU", 1)) // config["cpus_per_trial"])

    def add_lane(self, key, store: RunStore, task, horizons: list, seed: int,
                 probe_stride: int | None = None) -> None:
        """Register a task (a ForecastTask) with the store its trials are written to."""
        self.lanes[key] = {"store": store, "task_ref": ray.put(dataclasses.asdict(task)),
                           "horizons": horizons, "seed": seed,
                           "probe_stride": probe_stride or self.config.get("probe_stride", 1)}

    def submit(self, index: int, spec: dict, test: bool = False, lane=None):
        c, ln = self.config, self.lanes[lane]
        return self.remote.remote(index, spec, ln["task_ref"], ln["horizons"], c["profile"],
                                  ln["seed"], c["cpus_per_trial"], test, ln["probe_stride"])

    def run(self, specs: list, progress: bool = True) -> None:
        """Run the specs of the single lane (skipping those already in its store)."""
        self.run_jobs([(None, i, s) for i, s in enumerate(specs)], progress)

    def run_jobs(self, jobs: list, progress: bool = True) -> None:
        """Run ``(lane, index, spec)`` jobs in the given order, at most one per slot in flight."""
        done = {key: lane["store"].done_hashes() for key, lane in self.lanes.items()}
        pending = [j for j in jobs if ss.spec_hash(j[2]) not in done[j[0]]]
        bar = tqdm(total=len(jobs), initial=len(jobs) - len(pending), disable=not progress,
                   desc="trials", unit="trial")
        rows = [r for lane in self.lanes.values() for r in lane["store"].trials()]
        self._failed = sum(r["status"] != "ok" for r in rows)
        self._best = min((r["val_mse"] for r in rows if r["status"] == "ok"), default=None)
        self._update_bar(bar)
        flight = {}
        while pending or flight:
            while pending and len(flight) < self.slots:
                lane, index, spec = pending.pop(0)
                flight[self.submit(index, spec, lane=lane)] = (lane, index, spec,
                                                               time.monotonic())
            ready, _ = ray.wait(list(flight), num_returns=1, timeout=1.0)
            for ref in ready:
                self._finish(ref, flight.pop(ref), bar)
            self._cancel_late(flight, bar)
        bar.close()

    def _finish(self, ref, entry, bar) -> None:
        lane, index, spec, start = entry
        try:
            row = ray.get(ref)
        except ray.exceptions.RayError as exc:  # retries exhausted, node lost for good
            row = _unfinished_row(index, spec, self.lanes[lane]["seed"],
                                  time.monotonic() - start, "failed")
            row["error"] = f"{type(exc).__name__}: {exc}"[-4000:]
        self._record(lane, row, bar)

    def _cancel_late(self, flight: dict, bar) -> None:
        limit = self.config["trial_timeout"]
        if not limit:
            return
        now = time.monotonic()
        for ref, (lane, index, spec, start) in list(flight.items()):
            if now - start > limit:
                ray.cancel(ref, force=True)
                flight.pop(ref)
                self._record(lane, _unfinished_row(index, spec, self.lanes[lane]["seed"],
                                                   now - start, "timeout"), bar)

    def _record(self, lane, row: dict, bar) -> None:
        """Write a finished trial to its lane's store and update the running counts."""
        self.lanes[lane]["store"].add_trial(row)
        if row["status"] == "ok":
            self._best = row["val_mse"] if self._best is None else min(self._best, row["val_mse"])
        else:
            self._failed += 1
        bar.update(1)
        self._update_bar(bar)

    def _update_bar(self, bar) -> None:
        best = f"{self._best:.4f}" if self._best is not None and len(self.lanes) == 1 else "-"
        bar.set_postfix(failed=self._failed, best=best)


def init_ray(config: dict) -> None:
    """Join ``address`` (``auto`` or host:port) or start an embedded local Ray."""
    if ray.is_initialized():
        return
    if config["address"]:
        ray.init(address=config["address"], log_to_driver=False)
    else:
        ray.init(num_cpus=config["workers"] * config["cpus_per_trial"], include_dashboard=False,
                 log_to_driver=False)


def search(config: dict, run_dir, resume: bool = False, progress: bool = True,
           trial_fn=run_trial) -> dict:
    """``ctsnas search`` as a function: returns the run summary (see :mod:`nas.results`).

    Raises:
        ValueError: bad input, found before Ray starts (see :func:`check_config`,
            :func:`merge_stored`).
    """
    from .results import finalize

    config = check_config(merge_stored(run_dir, config, resume))
    task = prepare(config["data"], config["data_dir"], config["target"],
                   config["univariate"], config["horizons"])
    store = RunStore(run_dir)
    if store.get_config() is None:
        store.set_config({k: config[k] for k in PLAN_KEYS})
    specs = plan_specs(config["budget"], config["seed"], len(task.inputs) > 1,
                       config["extra_specs"])
    init_ray(config)
    try:
        runner = Search(config, store, task, trial_fn)
        runner.run(specs, progress)
        return finalize(runner)
    finally:
        store.close()
