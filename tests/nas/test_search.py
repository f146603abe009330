"""The search service on a real local Ray (num_cpus=2, dashboard off) with the embedded co2
series: a search completes; failing, diverging and killed trials; bad input before Ray."""
from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections import Counter
from pathlib import Path

import pytest
import ray
from ray import cloudpickle

import search_spaces as ss
from nas.cli import main
from nas.engine import runner
from nas.engine.evaluate import prepare
from nas.engine.runner import DEFAULTS, Search, plan_specs, search
from nas.engine.store import RunStore
from nas.engine.strategies import RandomStrategy, Strategy
from nas.engine.trial import run_trial

cloudpickle.register_pickle_by_value(sys.modules[__name__])

BASE = {"data": "co2", "horizons": [4, 12], "profile": "smoke", "seed": 0, "workers": 2}


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow  # the default run checks the same outputs of a search run by the service
# (tests/nas/test_service_api.py::test_search_watched_killed_resumed_to_completion)
def test_small_search_completes_with_all_outputs(tmp_path):
    summary = search({**BASE, "trials": 4}, tmp_path / "run", progress=False)
    board = summary["leaderboard"]
    assert summary["n_trials"] == 4 and summary["n_failed"] == 0
    assert [r["rank"] for r in board] == [1, 2, 3, 4]
    assert board[0]["val_mse"] <= board[-1]["val_mse"]
    hashes = [ss.spec_hash(s) for s in plan_specs(4, 0, spatial=False)]
    assert sorted(r["spec_hash"] for r in board) == sorted(hashes)
    assert any(r["trial"] == 0 and r["spec_hash"] == ss.spec_hash(ss.preset("ts2vec"))
               for r in board)
    run = tmp_path / "run"
    assert json.loads((run / "best_spec.json").read_text()) == board[0]["spec"]
    assert set(summary["best_test"]) == {"4", "12"}
    assert summary["best_test"]["4"]["test"]["mse"] > 0
    assert (run / "best_so_far.png").stat().st_size > 1000
    assert set(summary["references"]) == {"raw_lookback", "random_encoder"}
    row = board[0]
    assert row["versions"]["torch"].startswith("2.13") and row["node"] and row["seconds"] > 0


def faulty_trial(index, spec, task, horizons, profile, seed, threads=1, test=False,
                 probe_stride=1):
    """Trial 1 gets input with no channels (fit raises inside the trial); trial 2 gets input
    scaled by 1e30 (the loss diverges); the others are real trials."""
    task = dict(task)
    if index == 1:
        task["x"] = task["x"][:, :0]
    elif index == 2:
        task["x"] = task["x"] * 1e30
    return run_trial(index, spec, task, horizons, profile, seed, threads, test, probe_stride)


def test_raising_and_diverging_trials_are_recorded_and_the_search_goes_on(tmp_path):
    summary = search({**BASE, "trials": 4}, tmp_path / "run", progress=False,
                     trial_fn=faulty_trial)
    by_trial = {r["trial"]: r for r in summary["leaderboard"]}
    assert by_trial[1]["status"] == "failed" and "ValueError" in by_trial[1]["error"]
    assert "series: got shape" in by_trial[1]["error"]
    assert by_trial[2]["status"] == "diverged" and "non-finite loss" in by_trial[2]["error"]
    assert by_trial[0]["status"] == by_trial[3]["status"] == "ok"
    assert summary["n_trials"] == 4 and summary["n_failed"] == 2


def dying_trial(index, spec, task, horizons, profile, seed, threads=1, test=False,
                probe_stride=1):
    """The worker process running trial 1 dies (os._exit) on its first attempt."""
    marker = Path(os.environ["CTSNAS_TEST_MARKER"])
    if index == 1 and not marker.exists():
        marker.write_text("died once")
        os._exit(1)
    return run_trial(index, spec, task, horizons, profile, seed, threads, test, probe_stride)


@pytest.mark.slow  # about 90 s: a killed worker retried on local Ray
def test_a_killed_worker_is_retried(tmp_path, monkeypatch):
    marker = tmp_path / "died"
    monkeypatch.setenv("CTSNAS_TEST_MARKER", str(marker))
    ray.shutdown()  # workers inherit the environment of the Ray instance
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    summary = search({**BASE, "trials": 3}, tmp_path / "run", progress=False,
                     trial_fn=dying_trial)
    assert marker.read_text() == "died once"
    assert [r["status"] for r in summary["leaderboard"]] == ["ok"] * 3


def test_timeout_cancels_and_records(tmp_path):
    summary = search({**BASE, "trials": 2, "profile": "paper", "trial_timeout": 3},
                     tmp_path / "run", progress=False)
    by_trial = {r["trial"]: r for r in summary["leaderboard"]}
    assert by_trial[0]["status"] == "timeout", by_trial[0]["error"]  # 200 paper iterations
    assert by_trial[0]["error"].startswith("timeout: past trial_timeout 3 s, cancelled after ")
    assert 3 <= by_trial[0]["seconds"] < 10
    # trial 1 (an identity encoder cell) may finish inside 3 s on a fast machine, and then
    # its constant zero loss makes it degenerate; either way the search records it and ends
    assert by_trial[1]["status"] in ("ok", "degenerate", "timeout"), by_trial[1]["error"]


def test_resume_without_flag_and_changed_plan_are_refused(tmp_path, capsys):
    search({**BASE, "trials": 2}, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match=r"^run_dir: .* already holds a run \(co2, 2 trials\); "
                                         r"resume it \(resume=True\)"):
        search({**BASE, "trials": 2}, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match=r"^trials: got 3 but the run in .* has 2"):
        search({**BASE, "trials": 3}, tmp_path / "run", resume=True, progress=False)
    again = search({"trials": 2}, tmp_path / "run", resume=True, progress=False)
    assert again["n_trials"] == 2
    code = main(["search", "--data", "co2", "--trials", "2", "--run-dir", str(tmp_path / "run")])
    assert code == 2 and "--run-dir: " in capsys.readouterr().err


@pytest.mark.slow  # 19 s; the CLI's deprecated --budget is checked in the default run below
def test_a_run_written_with_the_former_names_resumes_and_shows(tmp_path, capsys):
    """Runs stored ``budget`` (now ``trials``) and could use profile ``seed`` (now ``screen``)."""
    run = tmp_path / "run"
    search({**BASE, "trials": 2}, run, progress=False)
    with sqlite3.connect(run / "run.sqlite") as con:
        con.execute("UPDATE config SET key = 'budget' WHERE key = 'trials'")
        con.execute("""UPDATE config SET value = '"seed"' WHERE key = 'profile'""")
    assert RunStore(run).get_config()["trials"] == 2
    with pytest.warns(DeprecationWarning, match="'budget' is deprecated"):
        again = search({"budget": 2, "profile": "screen"}, run, resume=True, progress=False)
    assert again["n_trials"] == 2 and again["config"]["trials"] == 2
    assert again["config"]["profile"] == "screen"
    with pytest.raises(ValueError, match=r"^budget: got 3 next to trials=2"), \
            pytest.warns(DeprecationWarning):
        search({"budget": 3, "trials": 2}, run, resume=True, progress=False)
    capsys.readouterr()
    assert main(["runs", "show", str(run)]) == 0
    assert "2 trials, 0 failed" in capsys.readouterr().out


class ListStrategy(Strategy):
    """Proposes the given specs in order, one per ask, and keeps every row it is told."""

    def __init__(self, specs):
        self.todo, self.told = [(ss.spec_hash(s), s) for s in specs], []

    def ask(self, n):
        out, self.todo = self.todo[:min(n, 1)], self.todo[min(n, 1):]
        return out

    def tell(self, spec, row):
        self.told.append(row)


def test_a_strategy_drives_the_runner_and_is_told_every_trial(tmp_path, monkeypatch):
    task = prepare("co2", None, None, False, BASE["horizons"])
    config = {**DEFAULTS, **BASE, "trials": 3}
    specs = plan_specs(3, 24, False)  # seed 24: two random specs cheaper than ts2vec (cost < 0.3)
    want = [ss.spec_hash(s) for s in specs]
    store = RunStore(tmp_path / "run")
    first = ListStrategy(specs)
    Search(config, store, task).run_strategy(first, 2, progress=False)  # trials caps the asks
    assert sorted(r["spec_hash"] for r in first.told) == sorted(want[:2])
    assert sorted(r["trial"] for r in store.trials()) == [0, 1]
    assert all(r["status"] == "ok" for r in first.told)
    stored = {r["spec_hash"]: r["finished_at"] for r in store.trials()}
    calls = Counter()
    real = ss.spec_hash
    monkeypatch.setattr(ss, "spec_hash", lambda spec: calls.update([real(spec)]) or real(spec))
    again = RandomStrategy(3, 24, False)  # the same plan as a random search: resumes it
    Search(config, store, task).run_strategy(again, 3, progress=False)
    assert calls == Counter(want)  # each spec validated and hashed once in the driver
    rows = {r["spec_hash"]: r for r in store.trials()}
    assert [rows[h]["trial"] for h in want] == [0, 1, 2]
    assert {h: rows[h]["finished_at"] for h in want[:2]} == stored  # told from the store
    store.close()


@pytest.mark.parametrize("argv,message", [
    (["--data", "nowhere", "--trials", "2"], "neither a dataset name nor a file"),
    (["--data", "co2", "--trials", "0"], "--trials: got 0; allowed: an int >= 1"),
    (["--data", "co2", "--budget", "0"], "--budget is deprecated; use --trials"),
    (["--data", "co2", "--budget", "3", "--trials", "2"], "--budget: got 3 next to --trials 2"),
    (["--data", "co2", "--trials", "2", "--profile", "huge"], "--profile: got 'huge'"),
    (["--data", "co2", "--trials", "2", "--workers", "0"], "--workers: got 0"),
    (["--data", "co2", "--trials", "2", "--spec", "/no/such.json"], "--spec: cannot read"),
    (["--trials", "2"], "--data: required"),
])
def test_bad_input_is_refused_before_ray_starts(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.setattr(runner, "init_ray", lambda config: pytest.fail("Ray was started"))
    code = main(["search", *argv, "--run-dir", str(tmp_path / "r")])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "r" / "run.sqlite").exists()


def test_bad_spec_in_spec_file_is_refused(tmp_path, capsys):
    path = tmp_path / "specs.jsonl"
    bad = ss.preset("ts2vec")
    bad["Train"]["lr"] = 5
    path.write_text(json.dumps(bad) + "\n")
    code = main(["search", "--data", "co2", "--trials", "2", "--spec", str(path),
                 "--run-dir", str(tmp_path / "r")])
    assert code == 2 and "--spec: spec 1: Train.lr: got 5" in capsys.readouterr().err


def test_runs_show_list_and_export(tmp_path, capsys):
    search({**BASE, "trials": 2}, tmp_path / "runs" / "a", progress=False)
    capsys.readouterr()
    assert main(["runs", "list", "--root", str(tmp_path / "runs")]) == 0
    assert "trials 2" in capsys.readouterr().out
    assert main(["runs", "show", str(tmp_path / "runs" / "a")]) == 0
    assert "raw_lookback" in capsys.readouterr().out
    import pandas as pd
    for fmt in ("csv", "parquet", "jsonl"):
        assert main(["runs", "export", str(tmp_path / "runs" / "a"), "--format", fmt]) == 0
        out = Path(capsys.readouterr().out.strip())
        frame = {"csv": pd.read_csv, "parquet": pd.read_parquet,
                 "jsonl": lambda p: pd.read_json(p, lines=True)}[fmt](out)
        assert len(frame) == 2 and "val_mse_4" in frame.columns
    assert main(["runs", "export", str(tmp_path), "--format", "xls"]) == 2
