"""The end of a search (:func:`finalize`): the reference rows, the training gains of the top
rows and the best spec's test metrics and encoder. Each is computed once (a resumed run reuses
it unless what it depends on changed), and all of them run side by side as Ray tasks on the
search's workers: with an online (FSNet) or Titans objective each is a full training run, and
one after another in the driver they took about an hour on ETTh2."""
from __future__ import annotations

from pathlib import Path

import ray

import downstream as ds
import search_spaces as ss
from search_spaces.learner import ContrastiveLearner

from .evaluate import input_scaling, load_options, random_encoder_probe, reference_rows
from .forecast import online_reference_rows, random_online
from .results import leaderboard, plot_best_so_far, read_json, write_json
from .titans import random_titans, titans_reference_rows

#: Leaderboard rows whose training gain :func:`finalize` computes (the random-init probe costs
#: 25-50% of a smoke/screen trial on co2, far over 10%, so it is not run in every trial).
GAIN_TOP = 3


@ray.remote
def _on_worker(fn, task: dict, *args):
    """``fn(ForecastTask(**task), *args)`` on a worker (Ray resolves ``task``'s object ref)."""
    return fn(ds.ForecastTask(**task), *args)


def _launcher(runner):
    """``launch(fn, *args)``: ``fn(task, *args)`` as a Ray task holding ``cpus_per_trial``
    CPUs, the run's task passed by its object ref; returns the task's object ref."""
    lane = runner.lanes[None]
    options = _on_worker.options(num_cpus=runner.config["cpus_per_trial"])
    return lambda fn, *args: options.remote(fn, lane["task_ref"], *args)


def gain_rows(board: list, top: int = GAIN_TOP) -> list:
    """The leaderboard rows whose training gain is reported: the ``top`` best-ranked ``ok``
    rows of distinct specs (an ASHA run holds a spec once per rung it reached)."""
    ranked = {}
    for r in board:
        if r["status"] == "ok":
            ranked.setdefault(r["spec_hash"], r)
    return list(ranked.values())[:top]


def random_val_mse(task: ds.ForecastTask, row: dict, config: dict) -> float:
    """The validation MSE of ``row``'s spec at its random initialisation (the row's seed):
    the probe's, or with ``downstream`` fsnet the online one of FSNet over it, with titans
    Titans' mode A over it (``cpus_per_trial`` torch threads)."""
    downstream, threads = config.get("downstream", "probe"), config["cpus_per_trial"]
    args = (row["spec"], task, config["horizons"], row["seed"])
    if downstream == "fsnet":
        return random_online(*args, threads=threads)["val_mse"]
    if downstream == "titans":
        return random_titans(*args, threads=threads)["val_mse"]
    return random_encoder_probe(*args, features=config.get("features", "repr"))["val_mse"]


def reference_row_set(task: ds.ForecastTask, spec: dict, config: dict,
                      test: bool = False) -> dict:
    """The reference rows of the run's objective: the probe's
    (:func:`~nas.engine.evaluate.reference_rows`) or, with ``downstream`` fsnet, the online
    ones (:func:`~nas.engine.forecast.online_reference_rows`) or, with ``titans``, Titans'
    (:func:`~nas.engine.titans.titans_reference_rows`)."""
    downstream = config.get("downstream", "probe")
    if downstream in ("fsnet", "titans"):
        rows = online_reference_rows if downstream == "fsnet" else titans_reference_rows
        return rows(spec, task, config["horizons"], config["seed"], test,
                    config["cpus_per_trial"])
    return reference_rows(spec, task, config["horizons"], config["seed"], test=test,
                          features=config.get("features", "repr"))


def reference_tests(task: ds.ForecastTask, spec: dict, config: dict) -> dict:
    """The reference rows' test metrics for ``best_test.json``, under ``tests`` per horizon
    (str) ``{"raw_lookback": metrics, "random_encoder": metrics}`` (the best spec's encoder at
    its random initialisation, the run's seed), and under ``random_val_mse`` that untrained
    encoder's validation MSE: :func:`random_val_mse` of a row of ``spec`` with the run's
    seed, which the best row's training gain reuses instead of a second untrained run."""
    refs = reference_row_set(task, spec, config, test=True)
    return {"tests": {str(h): {name: refs[name]["horizons"][h]["test"] for name in refs}
                      for h in config["horizons"]},
            "random_val_mse": refs["random_encoder"]["val_mse"]}


def _stored_references(task: ds.ForecastTask, config: dict) -> dict:
    """The ts2vec preset's reference rows as ``references.json`` holds them (str horizons)."""
    return {k: {"val_mse": v["val_mse"], "horizons": {str(h): r for h, r in v["horizons"].items()}}
            for k, v in reference_row_set(task, ss.preset("ts2vec"), config).items()}


def _stored(path: Path, fresh=lambda value: True):
    """The JSON at ``path`` if present, readable and ``fresh(value)``, else None."""
    try:
        value = read_json(path)
    except ValueError:  # cut off by an older, non-atomic writer: computed again
        return None
    return value if value is not None and fresh(value) else None


def _training_gains(top: list, random_mse: dict) -> dict:
    """``training_gain.json``: per row of ``top`` (str trial) its untrained validation MSE
    (``random_mse[trial]``) and the gain, that minus the trained row's (> 0: training helped)."""
    return {str(r["trial"]): {"random_val_mse": random_mse[r["trial"]],
                              "gain": random_mse[r["trial"]] - r["val_mse"]} for r in top}


def _best_record(best: dict) -> dict:
    return {"trial": best["trial"], "spec_hash": best["spec_hash"], "rung": best.get("rung") or 0}


def needs_test(run_dir: Path, best: dict) -> bool:
    """Whether the best trial's test metrics and encoder must be computed: either file is
    absent, or ``best_trial.json`` (written once they are) does not name ``best`` (a resumed
    run with more trials or time found a better one, or an ASHA promotion outranked it)."""
    have = (run_dir / "best_test.json").exists() and (run_dir / "best_encoder.pt").exists()
    return not have or _stored(run_dir / "best_trial.json") != _best_record(best)


def _save_best(runner, best: dict, final: dict, refs: dict) -> dict:
    """Write ``best_encoder.pt`` (the retrained learner, with the task's input scaling),
    ``best_test.json`` (per horizon its test metrics and, under ``references``, the reference
    rows' test metrics from ``refs``, :func:`reference_tests`' result) and then
    ``best_trial.json`` (``best``), each atomically. Returns the test row (without the
    bytes)."""
    if final["status"] != "ok":
        return final
    run_dir, config = runner.store.run_dir, runner.config
    model = ContrastiveLearner.from_bytes(final.pop("encoder"), "the best trial's encoder")
    series = ds.load(config["data"], config["data_dir"], **load_options(config))
    model.scaling = input_scaling(series, runner.task)
    model.save(run_dir / "best_encoder.pt")
    metrics = {h: {**m, "references": refs["tests"][h]} for h, m in final["metrics"].items()}
    write_json(metrics, run_dir / "best_test.json")
    write_json(_best_record(best), run_dir / "best_trial.json")
    return final


def finalize(runner) -> dict:
    """Write best_spec.json, best_trial.json, references.json, training_gain.json (per top row
    ``{"random_val_mse", "gain"}``, gain = the untrained encoder's validation MSE minus the
    trained one's; > 0: training helped), best_test.json, best_encoder.pt (the best spec
    retrained on a worker with its seed and rung's training length, see
    :class:`~search_spaces.learner.ContrastiveLearner`) and best_so_far.png into the run
    directory and return a summary. What is missing or stale is launched at once as Ray
    tasks and gathered."""
    store, config = runner.store, runner.config
    run_dir, rows = store.run_dir, store.trials()
    board = leaderboard(rows)
    plot_best_so_far(rows, run_dir / "best_so_far.png")
    launch = _launcher(runner)
    top = gain_rows(board)
    refs = _stored(run_dir / "references.json")
    gains = _stored(run_dir / "training_gain.json",
                    lambda v: set(v) == {str(r["trial"]) for r in top})
    refs_job = None if refs is not None else launch(_stored_references, config)
    best = board[0] if board and board[0]["status"] == "ok" else None
    test_jobs = None
    if best is not None:
        write_json(best["spec"], run_dir / "best_spec.json")
        if needs_test(run_dir, best):
            test_jobs = (runner.submit(best["trial"], best["spec"], test=True,
                                       rung=best.get("rung") or 0),
                         launch(reference_tests, best["spec"], config))
    # The best row is top[0]; its untrained run is the test references' when the seeds agree.
    shared = best["trial"] if test_jobs is not None and best["seed"] == config["seed"] else None
    gain_jobs = None if gains is not None else {
        r["trial"]: launch(random_val_mse, r, config) for r in top if r["trial"] != shared}
    if refs_job is not None:
        refs = ray.get(refs_job)
        write_json(refs, run_dir / "references.json")
    tests = ray.get(list(test_jobs)) if test_jobs is not None else None
    if gain_jobs is not None:
        values = dict(zip(gain_jobs, ray.get(list(gain_jobs.values()))))
        if shared is not None:
            values[shared] = tests[1]["random_val_mse"]
        gains = _training_gains(top, values)
        write_json(gains, run_dir / "training_gain.json")
    summary = {"run_dir": str(run_dir), "config": config, "n_trials": len(rows),
               "n_failed": sum(r["status"] != "ok" for r in rows), "references": refs,
               "training_gain": gains, "leaderboard": board}
    if tests is not None:
        final = _save_best(runner, best, *tests)
        if final["status"] != "ok":
            summary["best_test_error"] = final["error"]
    if best is not None and (run_dir / "best_test.json").exists():
        summary["best_test"] = read_json(run_dir / "best_test.json")
    if best is not None and (run_dir / "best_encoder.pt").exists():
        summary["best_encoder"] = str(run_dir / "best_encoder.pt")
    return summary
