"""Each search strategy through ``ctsnas search`` on the embedded co2 series (profile smoke,
2 trials, 2 workers, a real local Ray): it completes, stores its strategy, logs every ask and
tell, and ``--resume`` replays the log with the stored strategy; bad strategy options are
refused before Ray starts."""
from __future__ import annotations

import json

import pytest
import ray

import search_spaces as ss
from nas.cli import main
from nas.engine import runner
from nas.engine.store import RunStore
from nas.engine.strategies import LOG_NAME, plan_specs


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def stored(run_dir) -> tuple:
    store = RunStore(run_dir)
    try:
        return store.get_config(), store.trials()
    finally:
        store.close()


@pytest.mark.parametrize("name", [
    "guided",
    # guided builds evolution's inputs and more (same runner path): evolution runs with
    # -m slow, keeping the default run near 10 minutes; its replay is covered without Ray
    # in test_strategies.py. TPE's second spec is an uncapped random sample (about 35 s at
    # smoke on 2 shared cores); the same holds for it.
    pytest.param("evolution", marks=pytest.mark.slow),
    pytest.param("tpe", marks=pytest.mark.slow)])
def test_a_short_search_per_strategy_completes_and_resumes_with_its_strategy(name, tmp_path,
                                                                             capsys):
    run = tmp_path / name
    argv = ["search", "--data", "co2", "--trials", "2", "--profile", "smoke", "--horizons", "4",
            "--workers", "2", "--quiet", "--json", "--run-dir", str(run)]
    assert main([*argv, "--strategy", name, "--population", "2", "--sample-size", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    config, rows = stored(run)
    assert config["strategy"] == name and (config["population"], config["sample_size"]) == (2, 2)
    assert summary["n_trials"] == 2 and sorted(r["trial"] for r in rows) == [0, 1]
    events = [json.loads(line) for line in (run / LOG_NAME).read_text().splitlines()]
    assert sorted(e["ask"] for e in events if "ask" in e) == [0, 1]
    assert sorted(e["tell"] for e in events if "tell" in e) == [0, 1]
    assert [e["hash"] for e in events if "ask" in e] == [r["spec_hash"] for r in rows]
    assert main([*argv, "--resume"]) == 0  # the stored strategy replays: nothing re-run
    again_config, again = stored(run)
    assert again == rows and again_config == config
    assert len((run / LOG_NAME).read_text().splitlines()) == len(events)
    capsys.readouterr()
    assert main([*argv, "--resume", "--strategy", "random"]) == 2
    assert f"--strategy: got 'random' but the run in {run} has '{name}'" in capsys.readouterr().err


@pytest.mark.parametrize("extra,message", [
    (["--strategy", "annealing"], "--strategy: got 'annealing'; allowed: random, evolution, "
                                  "tpe, guided"),
    (["--strategy", "evolution", "--population", "1"], "--population: got 1; allowed: an int"),
    (["--strategy", "evolution", "--population", "4", "--sample-size", "5"],
     "--sample-size: got 5; allowed: at most --population 4"),
])
def test_bad_strategy_options_are_refused_before_ray_starts(extra, message, tmp_path, capsys,
                                                            monkeypatch):
    monkeypatch.setattr(runner, "init_ray", lambda config: pytest.fail("Ray was started"))
    code = main(["search", "--data", "co2", "--trials", "2", "--run-dir", str(tmp_path / "r"),
                 *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r" / "run.sqlite").exists()



def test_an_asha_search_stores_every_rung_ranks_the_longest_first_and_resumes(tmp_path, capsys):
    """``--fidelity asha`` around random search on co2 (rungs 2, 4, 8 iterations, eta 2; two
    quick specs first to keep it short; the other strategies go through the same wrapper, see
    test_asha.py): promotions happen, each rung result is a row, the leaderboard and the final
    test use the longest training reached, a resume re-runs nothing."""
    quick = tmp_path / "quick.jsonl"  # the 1st and 3rd random samples of seed 0 (< 2 s each;
    # the 2nd, the next new configuration after the promotion, takes about 16 s)
    quick.write_text("".join(json.dumps(s) + "\n" for s in plan_specs(4, 0, False)[1::2]))
    run = tmp_path / "asha"
    argv = ["search", "--data", "co2", "--trials", "4", "--profile", "smoke", "--horizons", "4",
            "--workers", "2", "--quiet", "--json", "--run-dir", str(run), "--fidelity", "asha",
            "--rungs", "2,4,8", "--eta", "2", "--spec", str(quick)]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    config, rows = stored(run)
    assert (config["fidelity"], config["rungs"], config["eta"]) == ("asha", [2, 4, 8], 2)
    assert len(rows) == 4 and {r["rung"] for r in rows} >= {0, 1}
    top = max(r["rung"] for r in rows if r["status"] == "ok")
    best = summary["leaderboard"][0]
    assert best["rung"] == top and best["val_mse"] == min(
        r["val_mse"] for r in rows if r["status"] == "ok" and r["rung"] == top)
    for r in rows:
        if r["rung"] > 0:  # a promoted spec was run at every lower rung first
            assert {(x["spec_hash"], x["rung"]) for x in rows} >= {
                (r["spec_hash"], k) for k in range(r["rung"])}
    assert set(summary["best_test"]) == {"4"}
    assert main([*argv, "--resume"]) == 0
    assert stored(run)[1] == rows


def test_a_time_budget_stops_new_asks_and_lets_running_trials_finish(tmp_path):
    """With ``time_budget`` the runner asks no trial once the stored trials' seconds / slots
    reach it (a trial function that reports 10 s per trial, budget 12 s on 2 slots: after
    the 3rd result no new ask; the ones in flight finish)."""
    def ten_seconds(index, spec, task, horizons, profile, seed, *args, **kwargs):
        return {"trial": index, "spec_hash": ss.spec_hash(spec), "spec": spec, "seed": seed,
                "status": "ok", "val_mse": 1.0 / (index + 1), "seconds": 10.0}

    config = runner.check_config({"data": "co2", "trials": 50, "horizons": [4], "workers": 2,
                                  "time_budget": 12})
    task = runner.prepare("co2", horizons=[4])
    store = RunStore(tmp_path)
    search = runner.Search(config, store, task, trial_fn=ten_seconds)
    search.run_strategy(runner.RandomStrategy(50, 0, False), 50, progress=False)
    assert len(store.trials()) in (3, 4) and search.out_of_time()
    store.close()
