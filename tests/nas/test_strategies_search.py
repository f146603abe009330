"""Each search strategy through ``ctsnas search`` on the embedded co2 series (profile smoke,
2 trials, 2 workers, a real local Ray): it completes, stores its strategy, logs every ask and
tell, and ``--resume`` replays the log with the stored strategy; bad strategy options are
refused before Ray starts."""
from __future__ import annotations

import json

import pytest
import ray

from nas.cli import main
from nas.engine import runner
from nas.engine.store import RunStore
from nas.engine.strategies import LOG_NAME


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
    "evolution", "guided",
    # TPE's second spec is an uncapped random sample (about 35 s at smoke on 2 shared cores):
    # the same runner path as the others, its replay is covered without Ray in
    # test_strategies.py; run it with -m slow.
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
