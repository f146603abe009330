"""The distributed search: ask a strategy for specs, run them as Ray tasks, stream results into
the store.

Trials are taken in completion order (``ray.wait``) with at most one per worker slot in
flight. A worker process that dies is retried by Ray (``max_retries``); an exception or a
divergence inside a trial comes back as a failed row; a trial past its time limit is cancelled
and recorded as timed out. Every finished trial is written at once, so ``resume`` after a
killed driver re-runs nothing that completed.
"""
from __future__ import annotations

import dataclasses
import time
from collections import deque
from typing import NamedTuple

import ray
from tqdm import tqdm

import search_spaces as ss

from .cluster import init_ray  # noqa: F401 - re-exported (seed generation, query)
from .config import (  # noqa: F401 - the config names re-exported (callers, tests)
    DEFAULTS,
    PLAN_KEYS,
    check_config,
    current_names,
    locked_config,
    merge_stored,
    profile_name,
    resolve_profile,
)
from .evaluate import load_options, prepare
from .forecast import online_search_task
from .titans import check_search_task
from .lock import RunLock
from .store import RunStore
from .strategies import (  # noqa: F401 - plan_specs re-exported
    AskTellLog,
    RandomStrategy,
    Strategy,
    job_of,
    make_strategy,
    plan_specs,
    replay,
    with_fidelity,
)
from .trial import memory_request, run_trial


class Job(NamedTuple):
    """One trial to run: its lane (task), position in the plan, spec hash, spec and ASHA rung
    (0 in a single-fidelity run)."""
    lane: object
    index: int
    spec_hash: str
    spec: dict
    rung: int = 0


def _unfinished_row(job: Job, seed: int, seconds: float, why: str, error: str) -> dict:
    return {"trial": job.index, "spec_hash": job.spec_hash, "spec": job.spec, "seed": seed,
            "status": why, "seconds": seconds, "error": error, "rung": job.rung}


class Search:
    """Runs trials on Ray, writing each to its store as it finishes.

    A search has one *lane* (its task, store, horizons and seed); seed generation adds one lane
    per task slice (:meth:`add_lane`) and runs jobs of every lane in one pool, so no worker
    idles at a task boundary. Specs come from a fixed list (:meth:`run`, :meth:`run_jobs`) or
    from a :class:`~nas.engine.strategies.Strategy` asked as slots free
    (:meth:`run_strategy`).
    """

    def __init__(self, config: dict, store: RunStore, task, trial_fn=run_trial):
        self.config, self.store, self.task = config, store, task
        resolve_profile(config["profile"])
        self.profile = profile_name(config["profile"])
        self.remote = ray.remote(num_cpus=config["cpus_per_trial"],
                                 max_retries=config["max_retries"],
                                 retry_exceptions=False)(trial_fn)
        self.lanes = {}
        if store is not None:
            self.add_lane(None, store, task, config["horizons"], config["seed"])
        self.slots = max(1, int(ray.cluster_resources().get("CPU", 1)) // config["cpus_per_trial"])

    def add_lane(self, key, store: RunStore, task, horizons: list, seed: int,
                 probe_stride: int | None = None) -> None:
        """Register a task (a ForecastTask) with the store its trials are written to."""
        self.lanes[key] = {"store": store, "task_ref": ray.put(dataclasses.asdict(task)),
                           "task": task,
                           "horizons": horizons, "seed": seed,
                           "probe_stride": probe_stride or self.config.get("probe_stride", 1)}

    def rung_profile(self, rung: int = 0):
        """The training profile of a trial at ``rung``: the run's profile, with ``n_iters`` =
        ``rungs[rung]`` when the run's fidelity is ``asha``."""
        if self.config.get("fidelity", "none") == "none":
            return self.profile
        return {**resolve_profile(self.profile), "n_iters": self.config["rungs"][rung]}

    def submit(self, index: int, spec: dict, test: bool = False, lane=None, rung: int = 0,
               **kwargs):
        """Start one trial of ``spec`` on ``lane`` at ``rung`` (:meth:`rung_profile`);
        ``kwargs`` go to the trial function. Returns its Ray object ref. The trial asks Ray
        for its estimated memory; one over ``max_memory`` is not run: its ref holds an
        ``out_of_memory`` row at once."""
        c, ln, profile = self.config, self.lanes[lane], self.rung_profile(rung)
        need, oom = memory_request(spec, ln, profile, c.get("max_memory"), index, test,
                                   c.get("features", "repr"))
        if oom is not None:
            return ray.put(oom)
        if c.get("features", "repr") != "repr":  # a custom trial_fn need not know the option
            kwargs.setdefault("features", c["features"])
        if c.get("downstream", "probe") != "probe":
            kwargs.setdefault("downstream", c["downstream"])
        return self.remote.options(memory=need).remote(
            index, spec, ln["task_ref"], ln["horizons"], profile, ln["seed"],
            c["cpus_per_trial"], test, ln["probe_stride"], **kwargs)

    def run(self, specs: list, progress: bool = True) -> None:
        """Run the specs of the single lane (skipping those already in its store)."""
        self.run_jobs([Job(None, i, ss.spec_hash(s), s) for i, s in enumerate(specs)], progress)

    def run_jobs(self, jobs: list, progress: bool = True) -> None:
        """Run :class:`Job` s in the given order (skipping those already in their lane's
        store), at most one per slot in flight."""
        done = {key: lane["store"].done_hashes() for key, lane in self.lanes.items()}
        pending = deque(j for j in jobs if j.spec_hash not in done[j.lane])
        bar = self._start_bar(len(jobs), len(jobs) - len(pending), progress)
        self._loop(lambda n: [pending.popleft() for _ in range(min(n, len(pending)))], bar)

    def run_strategy(self, strategy: Strategy, trials: int, progress: bool = True) -> None:
        """Run up to ``trials`` trials of the single lane as ``strategy`` proposes them, telling
        it every result. Every ask and tell goes to the run's ask/tell log; a resumed run
        replays it (:func:`~nas.engine.strategies.replay`), re-running first the trials that
        were in flight. With ``time_budget`` (seconds) no new trial is asked once the stored
        trials' seconds, summed and divided by the worker slots, reach it (the wall-clock
        time of a run whose workers are all busy, counted the same way after a resume)."""
        log, rows = AskTellLog(self.store.run_dir), self.store.trials()
        unfinished, asked = replay(strategy, log, rows)
        pending = deque(Job(None, *job) for job in unfinished)
        bar = self._start_bar(trials, len(rows), progress)

        def take(n: int) -> list:
            nonlocal asked
            out = [pending.popleft() for _ in range(min(n, len(pending)))]
            while len(out) < n and asked < trials and not self.out_of_time():
                job = job_of(strategy.ask(1))
                if job is None:
                    break
                log.ask(asked, job[0], job[2])
                out.append(Job(None, asked, *job))
                asked += 1
            return out

        def tell(spec: dict, row: dict) -> None:
            strategy.tell(spec, row)
            log.tell(row["trial"])

        self._loop(take, bar, tell)

    def out_of_time(self) -> bool:
        """Whether the run's ``time_budget`` (seconds, None: none) is spent: stored trial
        seconds summed over the run, divided by the worker slots."""
        budget = self.config.get("time_budget")
        return budget is not None and self._spent / self.slots >= budget

    def _start_bar(self, total: int, initial: int, progress: bool):
        bar = tqdm(total=total, initial=initial, disable=not progress, desc="trials",
                   unit="trial")
        rows = [r for lane in self.lanes.values() for r in lane["store"].trials()]
        self._spent = sum(r["seconds"] or 0.0 for r in rows)
        self._failed = sum(r["status"] != "ok" for r in rows)
        self._best = min((r["val_mse"] for r in rows if r["status"] == "ok"), default=None)
        self._update_bar(bar)
        return bar

    def _loop(self, take, bar, tell=None) -> None:
        """Keep every slot busy with jobs from ``take(n)`` until it has none and nothing is in
        flight; record each finished trial (and ``tell(spec, row)`` it)."""
        flight = {}
        while True:
            if len(flight) < self.slots:
                for job in take(self.slots - len(flight)):
                    ref = self.submit(job.index, job.spec, lane=job.lane, rung=job.rung)
                    flight[ref] = (job, time.monotonic())
            if not flight:
                break
            ready, _ = ray.wait(list(flight), num_returns=1, timeout=1.0)
            finished = []
            for ref in ready:
                job, start = flight.pop(ref)
                finished.append((job, self._finish(ref, job, start)))
            for job, row in finished + self._cancel_late(flight):
                self._record(job.lane, row, bar)
                if tell is not None:
                    tell(job.spec, row)
        bar.close()

    def _finish(self, ref, job: Job, start: float) -> dict:
        try:
            return {**ray.get(ref), "rung": job.rung}
        except ray.exceptions.RayError as exc:  # retries exhausted, node lost for good
            oom = isinstance(exc, ray.exceptions.OutOfMemoryError)
            return _unfinished_row(job, self.lanes[job.lane]["seed"], time.monotonic() - start,
                                   "out_of_memory" if oom else "failed",
                                   f"{type(exc).__name__}: {exc}"[-4000:])

    def _cancel_late(self, flight: dict) -> list:
        """Cancel the trials past ``trial_timeout``; -> their (job, timeout row) pairs."""
        limit, out = self.config["trial_timeout"], []
        if not limit:
            return out
        now = time.monotonic()
        for ref, (job, start) in list(flight.items()):
            if now - start > limit:
                ray.cancel(ref, force=True)
                flight.pop(ref)
                error = (f"timeout: past trial_timeout {limit:g} s, cancelled after "
                         f"{now - start:.1f} s")
                out.append((job, _unfinished_row(job, self.lanes[job.lane]["seed"], now - start,
                                                 "timeout", error)))
        return out

    def _record(self, lane, row: dict, bar) -> None:
        """Write a finished trial to its lane's store and update the running counts."""
        self.lanes[lane]["store"].add_trial(row)
        self._spent += row.get("seconds") or 0.0
        if row["status"] == "ok":
            self._best = row["val_mse"] if self._best is None else min(self._best, row["val_mse"])
        else:
            self._failed += 1
        bar.update(1)
        self._update_bar(bar)

    def _update_bar(self, bar) -> None:
        best = f"{self._best:.4f}" if self._best is not None and len(self.lanes) == 1 else "-"
        bar.set_postfix(failed=self._failed, best=best)


def check_search(given: dict, run_dir, resume: bool = False) -> tuple:
    """Everything :func:`search` checks before Ray starts: the options (:func:`check_config`)
    merged with a stored run (:func:`merge_stored`), the data loaded and split, the horizons
    against the downstream task. Returns ``(config, task)``; writes nothing.

    Raises:
        ValueError: as :func:`search`, named by the config key.
    """
    config = check_config(merge_stored(run_dir, given, resume))
    task = (online_search_task(config) if config["downstream"] == "fsnet" else
            prepare(config["data"], config["data_dir"], config["target"],
                    config["univariate"], config["horizons"], **load_options(config)))
    if config["downstream"] == "titans":
        check_search_task(task, config["horizons"])
    return config, task


def search(config: dict, run_dir, resume: bool = False, progress: bool = True,
           trial_fn=run_trial, wait_lock: float | None = 0, guidance=None) -> dict:
    """``ctsnas search`` as a function: ``config["trials"]`` trials proposed by the strategy
    ``config["strategy"]`` (random, evolution, tpe, guided; see
    :func:`~nas.engine.strategies.make_strategy`), at one fidelity or, with
    ``config["fidelity"] == "asha"``, inside asynchronous successive halving over
    ``config["rungs"]`` training iterations (:class:`~nas.engine.strategies.AshaStrategy`);
    ``config["time_budget"]`` (seconds) stops new asks; returns the run summary (see
    :mod:`nas.engine.finalize`). ``guidance(task, config)``, when given, returns the strategy's
    extra inputs, e.g. ``{"initial": [specs], "comparator": (model, feature)}``: the
    comparator lives above the engine (``nas.zeroshot``), so the caller builds them; it must
    be deterministic for the config so a resumed run re-plans identically.

    Nothing is written to ``run_dir`` before Ray is up (:func:`~nas.engine.cluster.init_ray`);
    the driver then holds the directory's lock (:class:`~nas.engine.lock.RunLock`, waiting
    up to ``wait_lock`` seconds for another driver, None: for ever) until it returns.

    Raises:
        ValueError: bad input, found before Ray starts (see :func:`check_config`,
            :func:`merge_stored`, :class:`RandomStrategy`), named by its config key; an
            unreachable ``address``; ``run_dir`` held by another driver (its PID named).
    """
    from .finalize import finalize

    given = current_names(config, warn=True)
    config, task = check_search(given, run_dir, resume)
    strategy = with_fidelity(
        make_strategy(config["strategy"], config["trials"], config["seed"], len(task.inputs) > 1,
                      config["extra_specs"], config["population"], config["sample_size"],
                      **(guidance(task, config) if guidance else {})),
        config["fidelity"], config["trials"], config["rungs"], config["eta"])
    init_ray(config)
    with RunLock(run_dir, wait_lock):
        config = locked_config(run_dir, given, resume, config)
        store = RunStore(run_dir)
        if store.get_config() is None:
            store.set_config({k: config[k] for k in PLAN_KEYS})
        try:
            runner = Search(config, store, task, trial_fn)
            runner.run_strategy(strategy, config["trials"], progress)
            return finalize(runner)
        finally:
            store.close()
