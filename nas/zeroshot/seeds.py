"""``ctsnas seeds``: (task, spec, score) records over the task suite, through the search runner.

Every slice of the suite (:mod:`seeds.suite`) is one lane of :class:`nas.engine.runner.Search`
with its own run store (``RUN_DIR/<slice_id>/run.sqlite``); one trial trains a spec on the
slice and probes both of its horizons, giving one record per task. The plan per slice: the ``ts2vec``
preset, a *shared* block of specs evaluated on every slice, then slice-specific specs, all
sampled under a cost cap (:func:`search_spaces.cost.relative_cost`). Jobs are interleaved across
slices so a partial run covers every task evenly. The *noise* lanes re-evaluate the first
``noise_specs`` specs of some slices with the next seed: the Kendall tau between the two seeds
is the ceiling any comparator can reach.
"""
from __future__ import annotations

import json
import subprocess
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

import search_spaces as ss
from search_spaces.cost import relative_cost
from search_spaces.learner.storage import write_atomic
from seeds.suite import SLICES, load_slice, slice_id, suite

from ..engine.lock import RunLock
from ..engine.runner import Job, Search, init_ray, profile_name, resolve_profile
from ..engine.store import RunStore
from ..engine.trial import run_trial

PLAN_FILE = "seeds.json"
PLAN_FILE_EXPORTED = "plan.json"
NOISE_SLICES = ("ETTh1-u-0-4000", "weather-m5-20000-24000")
PLAN_KEYS = ("per_task", "shared", "profile", "seed", "probe_stride", "max_cost",
             "noise_specs", "noise_slices", "slices")
DEFAULTS = {"per_task": 50, "shared": 24, "profile": "screen", "seed": 0, "probe_stride": "auto",
            "max_cost": 1.5, "noise_specs": 50,
            "noise_slices": None,
            "slices": list(SLICES), "data_dir": None, "skip_exported": None,
            "workers": 1, "cpus_per_trial": 1,
            "trial_timeout": 240.0, "max_retries": 3, "address": None}


def code_version() -> str:
    """``ctsnas <version>+<git commit>`` of the code generating the records."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False,
                              capture_output=True,
                              text=True, cwd=Path(__file__).parent, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head = ""
    return f"ctsnas {metadata.version('ctsnas')}" + (f"+{head}" if head else "")


def check_seed_config(config: dict) -> dict:
    """Fill defaults and refuse bad input before Ray starts.

    Raises:
        ValueError: unknown key, per_task < 1, shared > per_task, unknown profile, a noise
            slice not in the suite, max_cost <= 0, ``skip_exported`` not an export of this
            plan.
    """
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"config: unknown key {min(unknown)!r}; allowed: {sorted(DEFAULTS)}")
    config = {**DEFAULTS, **config}
    config["profile"] = profile_name(config["profile"])
    if config["probe_stride"] != "auto":
        _positive_int(config, "probe_stride")
    for key in ("per_task", "workers", "cpus_per_trial"):
        _positive_int(config, key)
    if not 0 <= config["shared"] <= config["per_task"]:
        raise ValueError(f"shared: got {config['shared']!r}; allowed: 0 .. "
                         f"per_task={config['per_task']}")
    if not config["max_cost"] > 0:
        raise ValueError(f"max_cost: got {config['max_cost']!r}; allowed: > 0")
    resolve_profile(config["profile"])
    ids = [slice_id(s) for s in config["slices"]]
    if config["noise_slices"] is None:  # default: two slices of different datasets
        config["noise_slices"] = ([s for s in NOISE_SLICES if s in ids] or ids)[:2]
    for sid in config["noise_slices"]:
        if sid not in ids:
            raise ValueError(f"noise_slices: got {sid!r}; allowed: {ids}")
    if config["skip_exported"] is not None:
        _check_exported(config, config["skip_exported"], "skip_exported")
    return config


def _plan_differs(stored: dict, plan: dict):
    """The first plan key whose value differs (profile aliases are equal), else None."""
    for key in PLAN_KEYS:
        a, b = stored[key], plan[key]
        if key == "profile":
            a, b = profile_name(a), profile_name(b)
        if json.dumps(a) != json.dumps(b):
            return key
    return None


def _check_exported(plan: dict, out_dir, argument: str) -> None:
    """``out_dir`` (the value of ``argument``) must hold an export of the same plan."""
    out = Path(out_dir)
    if not (out / PLAN_FILE_EXPORTED).is_file():
        raise ValueError(f"{argument}: got {str(out)!r}; allowed: a directory written by "
                         f"the seed export (export, with {PLAN_FILE_EXPORTED})")
    stored = json.loads((out / PLAN_FILE_EXPORTED).read_text())
    key = _plan_differs(stored, plan)
    if key is not None:
        raise ValueError(f"{argument}: {key} is {plan[key]!r} but {out} was "
                         f"exported from {stored[key]!r}; allowed: the same plan")


def exported_jobs(out_dir) -> set:
    """(slice_id, spec_hash, seed) of every record exported into ``out_dir``."""
    out_dir = Path(out_dir)
    return {(r["task"]["slice_id"], r["spec_hash"], r["seed"])
            for name in ("records.jsonl", "noise.jsonl") if (out_dir / name).is_file()
            for r in read_records(out_dir / name)}


def _positive_int(config: dict, key: str) -> None:
    v = config[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{key}: got {v!r}; allowed: an int >= 1"
                         + (" or auto" if key == "probe_stride" else ""))


def probe_stride(config: dict, task, target_samples: int = 1000) -> int:
    """The probe stride of a slice: the configured int, or with ``auto`` the stride that keeps
    about ``target_samples`` training samples (1 on short series)."""
    if config["probe_stride"] != "auto":
        return config["probe_stride"]
    start, end = task.splits["train"]
    return max(1, round((end - start - 200) / target_samples))


def sample_capped(rng, spatial: bool, n_features: int, max_cost: float) -> dict:
    """A random spec whose window cost is at most ``max_cost`` times the ts2vec preset's."""
    while True:
        spec = ss.sample(rng, spatial=spatial)
        if relative_cost(spec, n_features) <= max_cost:
            return spec


def slice_plan(config: dict, position: int, task) -> list:
    """The ``(spec_hash, spec)`` pairs of one slice: ts2vec, the shared block (channel-mixing
    only, so valid on any slice), then slice-specific specs (spatial ops allowed on
    multivariate slices)."""
    n_features = task.x.shape[1]
    anchor = ss.preset("ts2vec")
    specs = [(ss.spec_hash(anchor), anchor)]
    seen = {specs[0][0]}
    shared_rng = np.random.default_rng([config["seed"], 0])
    own_rng = np.random.default_rng([config["seed"], 1, position])
    while len(specs) < config["per_task"]:
        shared = len(specs) < config["shared"]
        spec = sample_capped(shared_rng if shared else own_rng,
                             spatial=not shared and n_features > 1 and not task.univariate,
                             n_features=n_features, max_cost=config["max_cost"])
        spec_hash = ss.spec_hash(spec)
        if spec_hash not in seen:
            seen.add(spec_hash)
            specs.append((spec_hash, spec))
    return specs


def _lane_store(run_dir: Path, key: str, meta: dict) -> RunStore:
    store = RunStore(run_dir / key)
    if store.get_config() is None:
        store.set_config(meta)
    return store


def _open_plan(run_dir: Path, config: dict, resume: bool) -> dict:
    path = run_dir / PLAN_FILE
    plan = {k: config[k] for k in PLAN_KEYS}
    if path.exists():
        stored = json.loads(path.read_text())
        if not resume:
            raise ValueError(f"run_dir: {run_dir} already holds seed generation; resume it "
                             "(resume=True) or pick another directory")
        key = _plan_differs(stored, plan)
        if key is not None:
            raise ValueError(f"{key}: got {plan[key]!r} but the run in {run_dir} has "
                             f"{stored[key]!r}; allowed: the run's own value when resuming")
        return stored
    run_dir.mkdir(parents=True, exist_ok=True)
    plan["code_version"] = code_version()
    plan["started_at"] = time.time()
    write_atomic(json.dumps(plan, indent=2).encode(), path)
    return plan


def generate(config: dict, run_dir, resume: bool = False, progress: bool = True,
             trial_fn=run_trial, wait_lock: float | None = 0) -> dict:
    """``ctsnas seeds generate``: run (or resume) the plan; returns counts per status. Nothing
    is written before Ray is up; the driver holds ``run_dir``'s lock
    (:class:`~nas.engine.lock.RunLock`) while it runs.

    Raises:
        ValueError: bad options, a missing dataset or another plan in ``run_dir`` (before
            Ray starts); an unreachable address; ``run_dir`` held by another driver.
    """
    config = check_seed_config(config)
    run_dir = Path(run_dir)
    tasks = {slice_id(s): load_slice(s, config["data_dir"]) for s in config["slices"]}
    if (run_dir / PLAN_FILE).exists() and not resume:
        _open_plan(run_dir, config, resume)  # refuses before Ray starts
    init_ray(config)
    with RunLock(run_dir, wait_lock):
        return _generate(config, run_dir, tasks, resume, progress, trial_fn)


def _generate(config: dict, run_dir: Path, tasks: dict, resume: bool, progress: bool,
              trial_fn) -> dict:
    plan = _open_plan(run_dir, config, resume)
    plans = {sid: slice_plan(config, i, task) for i, (sid, task) in enumerate(tasks.items())}
    runner = Search({**config, "horizons": None}, None, None, trial_fn)
    horizons = {slice_id(s): s["horizons"] for s in config["slices"]}
    for sid, task in tasks.items():
        meta = {"slice_id": sid, "seed": config["seed"], "profile": config["profile"],
                "probe_stride": probe_stride(config, task)}
        runner.add_lane(sid, _lane_store(run_dir, sid, meta), task, horizons[sid],
                        config["seed"], probe_stride(config, task))
    for sid in config["noise_slices"]:
        key = f"noise-seed{config['seed'] + 1}/{sid}"
        runner.add_lane(key, _lane_store(run_dir, key, {
                            "slice_id": sid, "seed": config["seed"] + 1,
                            "probe_stride": probe_stride(config, tasks[sid])}),
                        tasks[sid], horizons[sid], config["seed"] + 1,
                        probe_stride(config, tasks[sid]))
    jobs = []
    for p in range(config["per_task"]):
        jobs += [Job(sid, p, *plans[sid][p]) for sid in tasks]
        if p < config["noise_specs"]:
            jobs += [Job(f"noise-seed{config['seed'] + 1}/{sid}", p, *plans[sid][p])
                     for sid in config["noise_slices"]]
    if config["skip_exported"] is not None:
        done = exported_jobs(config["skip_exported"])
        jobs = [j for j in jobs if (j.lane.rsplit("/", 1)[-1], j.spec_hash,
                                    runner.lanes[j.lane]["seed"]) not in done]
    try:
        runner.run_jobs(jobs, progress)
    finally:
        for lane in runner.lanes.values():
            lane["store"].close()
    return status_counts(run_dir) | {"code_version": plan["code_version"]}


def _lane_dirs(run_dir: Path) -> list:
    return sorted(p.parent for p in run_dir.glob("**/run.sqlite"))


def status_counts(run_dir) -> dict:
    """{"trials": n, "ok": n, "failed": n, ...} over every lane of a seed run."""
    counts = {}
    for lane in _lane_dirs(Path(run_dir)):
        store = RunStore(lane)
        for row in store.trials():
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        store.close()
    return {"trials": sum(counts.values()), **counts}


def _slice_meta(plan: dict) -> dict:
    return {slice_id(s): s for s in plan["slices"]}


def lane_records(run_dir, key: str, plan: dict) -> list:
    """The records of one lane: one per (successful trial, horizon of the slice)."""
    store = RunStore(Path(run_dir) / key)
    rows, lane_config = store.trials(), store.get_config()
    store.close()
    sl = _slice_meta(plan)[lane_config["slice_id"]]
    out = []
    for row in rows:
        if row["status"] != "ok":
            continue
        for t in suite([sl]):
            m = row["metrics"][str(t["horizon"])]
            out.append({"task_id": t["task_id"], "dataset": t["dataset"],
                        "task": {k: t[k] for k in ("slice_id", "dataset", "univariate",
                                                   "columns", "rows", "horizon")},
                        "spec": row["spec"], "spec_hash": row["spec_hash"], "seed": row["seed"],
                        "val_mse": m["val"]["mse"], "val_mae": m["val"]["mae"],
                        "alpha": m["alpha"], "n_params": row["n_params"],
                        "seconds": row["seconds"], "profile": plan["profile"],
                        "probe_stride": lane_config.get("probe_stride"),
                        "code_version": plan["code_version"],
                        "torch": (row["versions"] or {}).get("torch")})
    return out


def export(run_dir, out_dir, merge: bool = False) -> dict:
    """``ctsnas seeds export``: write ``records.jsonl`` (main lanes), ``noise.jsonl`` (the
    second-seed lanes), ``plan.json`` and ``noise_ceiling.json`` (:func:`noise_ceiling` of the
    two) into ``out_dir``; returns {file: number of records, "noise_ceiling": mean tau}.

    With ``merge`` the records already in ``out_dir`` are kept and the run's records are added
    unless the same (task, spec, seed) is there: a run generated with ``skip_exported=out_dir``
    continues the exported plan (e.g. from a fresh clone, where the run directory is gone).
    ``plan.json`` keeps the first run's plan and lists the merged runs under ``merged``.

    Raises:
        ValueError: ``run_dir`` holds no seed generation; with ``merge``, ``out_dir`` holds
            an export of another plan.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    path = run_dir / PLAN_FILE
    if not path.is_file():
        raise ValueError(f"run_dir: {run_dir} holds no seed generation (no {PLAN_FILE}); "
                         "allowed: a directory written by seed generation (generate)")
    plan = json.loads(path.read_text())
    out_plan = plan
    if merge and (out_dir / PLAN_FILE_EXPORTED).is_file():
        _check_exported(plan, out_dir, "out_dir")
        out_plan = json.loads((out_dir / PLAN_FILE_EXPORTED).read_text())
        out_plan["merged"] = out_plan.get("merged", []) + [
            {k: plan[k] for k in ("code_version", "started_at")}]
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, noise in (("records.jsonl", False), ("noise.jsonl", True)):
        keys = [str(p.relative_to(run_dir)) for p in _lane_dirs(run_dir)]
        keys = [k for k in keys if k.startswith("noise-") == noise]
        recs = [r for k in keys for r in lane_records(run_dir, k, plan)]
        if merge and (out_dir / name).is_file():
            old = read_records(out_dir / name)
            have = {(r["task_id"], r["spec_hash"], r["seed"]) for r in old}
            recs = old + [r for r in recs if (r["task_id"], r["spec_hash"], r["seed"]) not in have]
        write_atomic("".join(json.dumps(r, sort_keys=True) + "\n" for r in recs).encode(),
                     out_dir / name)
        counts[name] = len(recs)
    write_atomic(json.dumps(out_plan, indent=2).encode(), out_dir / PLAN_FILE_EXPORTED)
    ceiling = noise_ceiling(*(read_records(out_dir / n) for n in ("records.jsonl",
                                                                   "noise.jsonl")))
    write_atomic(json.dumps(ceiling, indent=2).encode(), out_dir / "noise_ceiling.json")
    return counts | {"noise_ceiling": ceiling["mean_tau"]}


def read_records(path) -> list:
    """Records from a JSON lines file written by :func:`export`."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def noise_ceiling(records: list, noise: list) -> dict:
    """Kendall tau between the two seeds' validation MSE per task (same specs), and the mean:
    the ceiling of any comparator's rank correlation on these labels."""
    first = {(r["task_id"], r["spec_hash"]): r["val_mse"] for r in records}
    per_task = {}
    for r in noise:
        if (r["task_id"], r["spec_hash"]) in first:
            per_task.setdefault(r["task_id"], []).append((first[r["task_id"], r["spec_hash"]],
                                                          r["val_mse"]))
    taus = {t: float(kendalltau(*zip(*pairs)).statistic) for t, pairs in per_task.items()
            if len(pairs) >= 3}
    return {"per_task": taus, "n_specs": {t: len(p) for t, p in per_task.items()},
            "mean_tau": float(np.mean(list(taus.values()))) if taus else None}
