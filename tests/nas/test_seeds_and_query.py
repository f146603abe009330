"""Seed generation, export and zero-shot query on a real local Ray (num_cpus=2)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import ray

import search_spaces as ss
from nas.cli import main
from nas.zeroshot import seeds
from nas.zeroshot.comparators import hit_rate, kendall, train
from nas.zeroshot.features import SEEDS_DIR, load_features
from nas.zeroshot.query import candidates, check_query, query
from search_spaces.cost import relative_cost

SLICES = [
    {"dataset": "illness", "univariate": True, "columns": ["OT"], "rows": [0, 966],
     "horizons": [12, 24]},
    {"dataset": "illness", "univariate": False, "columns": None, "rows": [0, 966],
     "horizons": [12, 24]},
]
CONFIG = {"slices": SLICES, "per_task": 3, "shared": 2, "noise_specs": 2,
          "profile": {"n_iters": 2, "max_length": 128}, "workers": 2}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def seed_run(local_ray, tmp_path_factory, data_dir):
    run = tmp_path_factory.mktemp("seeds") / "run"
    summary = seeds.generate({**CONFIG, "data_dir": str(data_dir)}, run, progress=False)
    return run, summary


def test_generation_writes_one_record_per_task_and_spec_and_resumes(seed_run, data_dir,
                                                                    tmp_path):
    run, summary = seed_run
    assert summary["trials"] == 2 * 3 + 2 * 2 and summary["ok"] == 10  # + 2 noise lanes
    counts = seeds.export(run, tmp_path)
    ceiling = json.loads((tmp_path / "noise_ceiling.json").read_text())
    assert counts == {"records.jsonl": 2 * 2 * 3, "noise.jsonl": 2 * 2 * 2,
                      "noise_ceiling": ceiling["mean_tau"]}
    recs = seeds.read_records(tmp_path / "records.jsonl")
    assert len({r["task_id"] for r in recs}) == 4
    assert all(r["dataset"] == "illness" and r["val_mse"] > 0 and r["code_version"]
               .startswith("ctsnas") for r in recs)
    # the shared block (ts2vec + 1 sampled spec) is evaluated on both slices
    by_slice = {}
    for r in recs:
        by_slice.setdefault(r["task"]["slice_id"], set()).add(r["spec_hash"])
    a, b = by_slice.values()
    assert len(a & b) == 2 and ss.spec_hash(ss.preset("ts2vec")) in a & b
    noise = seeds.read_records(tmp_path / "noise.jsonl")
    assert {r["seed"] for r in noise} == {1}
    assert ceiling == seeds.noise_ceiling(recs, noise)
    assert set(ceiling["n_specs"].values()) == {2}
    # resume: nothing re-runs; another plan in the same folder is refused
    again = seeds.generate({**CONFIG, "data_dir": str(data_dir)}, run, resume=True,
                           progress=False)
    assert again["trials"] == 10
    with pytest.raises(ValueError, match=r"^run_dir: .* already holds seed generation; resume "
                                         r"it \(resume=True\)"):
        seeds.generate({**CONFIG, "data_dir": str(data_dir)}, run, progress=False)
    with pytest.raises(ValueError, match=r"^per_task: got 4 but the run in .* has 3"):
        seeds.generate({**CONFIG, "per_task": 4, "data_dir": str(data_dir)}, run,
                       resume=True, progress=False)


def test_a_partial_export_is_continued_without_its_run_directory(seed_run, data_dir,
                                                                 tmp_path, capsys):
    run, _ = seed_run
    out = tmp_path / "exported"
    seeds.export(run, out)
    full = {n: seeds.read_records(out / n) for n in ("records.jsonl", "noise.jsonl")}
    # drop one spec of one slice (both horizons) and one noise trial, as an unfinished plan
    gone = full["records.jsonl"][-1]
    keep = [r for r in full["records.jsonl"] if (r["task"]["slice_id"], r["spec_hash"])
            != (gone["task"]["slice_id"], gone["spec_hash"])]
    (out / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in keep))
    (out / "noise.jsonl").write_text("".join(json.dumps(r) + "\n"
                                             for r in full["noise.jsonl"][:-2]))
    config = {**CONFIG, "data_dir": str(data_dir), "skip_exported": str(out)}
    summary = seeds.generate(config, tmp_path / "more", progress=False)
    assert summary["trials"] == 2 and summary["ok"] == 2  # only the missing ones ran
    counts = seeds.export(tmp_path / "more", out, merge=True)
    assert {n: counts[n] for n in full} == {n: len(v) for n, v in full.items()}
    merged = seeds.read_records(out / "records.jsonl")
    assert len({(r["task_id"], r["spec_hash"], r["seed"]) for r in merged}) == len(merged)
    assert any(r["spec_hash"] == gone["spec_hash"] for r in merged)
    plan = json.loads((out / "plan.json").read_text())
    assert len(plan["merged"]) == 1 and plan["per_task"] == CONFIG["per_task"]
    with pytest.raises(ValueError, match="^skip_exported: per_task is 4 but"):
        seeds.generate({**config, "per_task": 4}, tmp_path / "other", progress=False)
    with pytest.raises(ValueError, match="^skip_exported: got .* allowed: a directory"):
        seeds.generate({**config, "skip_exported": str(tmp_path)}, tmp_path / "other",
                       progress=False)
    assert not (tmp_path / "other").exists()
    other = tmp_path / "other-plan"  # a run of another plan cannot be merged into the export
    shutil.copytree(tmp_path / "more", other)
    changed = json.loads((other / "seeds.json").read_text()) | {"per_task": 4}
    (other / "seeds.json").write_text(json.dumps(changed))
    with pytest.raises(ValueError, match="^out_dir: per_task is 4 but"):
        seeds.export(other, out, merge=True)
    capsys.readouterr()
    assert main(["seeds", "export", "--run-dir", str(other), "--out", str(out), "--merge"]) == 2
    assert "ctsnas: error: --out: per_task is 4 but" in capsys.readouterr().err


def test_shipped_seeds_meet_the_suite_and_noise_sizes():
    """The shipped records: >= 1,200 over >= 24 tasks; the seed-to-seed noise measured on
    >= 50 specs of >= 3 tasks, and noise_ceiling.json is what the records give."""
    out = SEEDS_DIR
    recs, noise = (seeds.read_records(out / n) for n in ("records.jsonl", "noise.jsonl"))
    assert len(recs) >= 1200 and len({r["task_id"] for r in recs}) >= 24
    keys = [(r["task_id"], r["spec_hash"], r["seed"]) for r in recs + noise]
    assert len(set(keys)) == len(keys)
    ceiling = seeds.noise_ceiling(recs, noise)
    assert sum(n >= 50 for n in ceiling["n_specs"].values()) >= 3
    assert json.loads((out / "noise_ceiling.json").read_text()) == ceiling


@pytest.mark.parametrize("bad, match", [
    ({"shared": 5}, r"shared: got 5; allowed: 0 \.\. per_task=3"),
    ({"per_task": 0}, "per_task: got 0"),
    ({"noise_slices": ["nope"]}, "noise_slices: got 'nope'"),
    ({"max_cost": 0}, "max_cost: got 0"),
    ({"probe_stride": 0}, "probe_stride: got 0"),
    ({"profile": "huge"}, "profile: got 'huge'"),
    ({"colour": 1}, "config: unknown key 'colour'"),
])
def test_bad_seed_options_fail_before_any_work(bad, match, tmp_path):
    with pytest.raises(ValueError, match="^" + match):
        seeds.generate({**CONFIG, **bad}, tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("argv, message", [
    (["--per-task", "0"], "--per-task: got 0"),
    (["--per-task", "3", "--shared", "5"], "--shared: got 5; allowed: 0 .. --per-task 3"),
    (["--max-cost", "0"], "--max-cost: got 0"),
    (["--skip-exported", "."], "--skip-exported: got '.'; allowed: a directory"),
])
def test_seeds_cli_names_the_options(argv, message, tmp_path, capsys):
    assert main(["seeds", "generate", *argv, "--run-dir", str(tmp_path / "x")]) == 2
    assert f"ctsnas: error: {message}" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_seeds_generate_passes_wait_lock_and_refuses_a_bad_one(tmp_path, capsys, monkeypatch):
    seen = {}
    monkeypatch.setattr(seeds, "generate", lambda *a, **kw: seen.update(kw) or {})
    assert main(["seeds", "generate", "--run-dir", str(tmp_path), "--wait-lock", "30"]) == 0
    assert seen["wait_lock"] == 30.0
    with pytest.raises(SystemExit) as stop:
        main(["seeds", "generate", "--run-dir", str(tmp_path), "--wait-lock", "nan"])
    assert stop.value.code == 2 and "--wait-lock: got 'nan'" in capsys.readouterr().err


def test_the_shipped_plan_is_continued_under_the_new_profile_name():
    """seeds/plan.json says profile "seed" (the former name of "screen", the default now):
    ``--skip-exported seeds`` still matches it; another profile does not."""
    shipped = SEEDS_DIR
    assert json.loads((shipped / "plan.json").read_text())["profile"] == "seed"
    config = seeds.check_seed_config({"skip_exported": str(shipped)})
    assert config["profile"] == "screen"
    assert seeds.check_seed_config({"skip_exported": str(shipped), "profile": "seed"})
    with pytest.raises(ValueError, match="^skip_exported: profile is 'small' but"):
        seeds.check_seed_config({"skip_exported": str(shipped), "profile": "small"})


def test_sampling_under_the_cost_cap_is_deterministic():
    from nas.zeroshot.query import _candidates

    a = candidates(300, 3, True, 11, 1.5)
    _candidates.cache_clear()  # drawn again, not read from the cache
    assert [ss.spec_hash(s) for s in a] == [ss.spec_hash(s) for s in candidates(300, 3, True,
                                                                                11, 1.5)]
    assert candidates(300, 3, True, 11, 1.5) is not candidates(300, 3, True, 11, 1.5)
    assert len({ss.spec_hash(s) for s in a}) == 300
    assert max(relative_cost(s, 11) for s in a) <= 1.5


def test_anchored_candidates_are_ts2vec_neighbours_under_the_cap():
    a = candidates(200, 5, False, 8, 1.5, anchor_share=0.5)
    anchor = ss.preset("ts2vec")
    hashes = [ss.spec_hash(s) for s in a]
    assert len(set(hashes)) == 200 and ss.spec_hash(anchor) not in hashes
    changed = [sum(s[cell] != anchor[cell] for cell in anchor) for s in a]
    assert all(1 <= c <= 3 for c in changed[:100])  # 1-3 cells redrawn
    assert np.mean(changed[100:]) > np.mean(changed[:100])  # the rest: uniform samples
    assert max(relative_cost(s, 8) for s in a) <= 1.5
    with pytest.raises(ValueError, match=r"^anchor_share: got 1\.5; allowed: a number in"):
        check_query({"anchor_share": 1.5})
    assert check_query({})["profile"] == check_query({"profile": "seed"})["profile"] == "screen"


def test_kendall_and_hit_rate_on_known_orders():
    mse = [0.1, 0.2, 0.3, 0.4]
    assert kendall([4, 3, 2, 1], mse) == pytest.approx(1.0)
    assert kendall([1, 2, 3, 4], mse) == pytest.approx(-1.0)
    assert hit_rate([4, 3, 2, 1], mse) == 1.0 and hit_rate([1, 2, 3, 4], mse) == 0.0
    assert hit_rate(np.arange(40), np.arange(40)[::-1] / 40) == 1.0  # top 2 of 40


def test_query_ranks_and_trains_the_top_on_co2(seed_run, tmp_path):
    run, _ = seed_run
    seeds.export(run, tmp_path / "exp")
    recs = seeds.read_records(tmp_path / "exp" / "records.jsonl")
    features = load_features(recs, cache=tmp_path / "features.json")
    train(recs, features, tmp_path / "weights", epochs=2)
    config = {"data": "co2", "horizon": 4, "samples": 300, "top": 3, "train_top": 1,
              "compare_ts2vec": True, "weights": str(tmp_path / "weights"),
              "profile": {"n_iters": 2, "max_length": 128}, "workers": 2}
    result = query(config, tmp_path / "q")
    assert [t["predicted_rank"] for t in result["top"]] == [1, 2, 3]
    scores = [t["score"] for t in result["top"]]
    assert scores == sorted(scores, reverse=True) and result["n_candidates"] == 300
    best, base = result["train"]["best"], result["train"]["ts2vec"]
    assert best["spec_hash"] == result["top"][0]["spec_hash"]
    assert best["test"]["4"]["mse"] > 0 and base["test"]["4"]["mse"] > 0
    with pytest.raises(ValueError, match="^train_top: got 4; allowed: at most top=3"):
        check_query({**config, "train_top": 4})


def test_query_cli_refuses_bad_input_before_work(tmp_path, capsys):
    assert main(["query", "--data", "co2", "--horizon", "4", "--weights",
                 str(tmp_path)]) == 2
    assert "--weights: no trained comparator" in capsys.readouterr().err
    assert main(["query", "--data", "co2", "--horizon", "4000"]) == 2
    assert "H=4000 is too long" in capsys.readouterr().err
    assert main(["query", "--data", "co2", "--horizon", "4", "--top", "9", "--samples", "5"]) == 2
    assert "--top: got 9; allowed: at most --samples 5" in capsys.readouterr().err
    assert main(["comparator", "train", "--members", "0", "--out", str(tmp_path / "w")]) == 2
    assert "--members: got 0" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_shipped_comparator_ranks_20000_candidates(capsys):
    pytest.importorskip("torch_geometric")
    from nas.zeroshot.comparators import WEIGHTS_DIR
    if not (WEIGHTS_DIR / "tahc.pt").is_file():
        pytest.skip("no shipped comparator weights")
    assert main(["query", "--data", "co2", "--horizon", "12", "--samples", "2000",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_candidates"] == 2000 and len(out["top"]) == 5


def test_cached_task_features_equal_a_fresh_computation():
    from comparator.task_features import load_reference, task_features

    from nas.engine.evaluate import prepare
    from nas.zeroshot.query import _FEATURES, cached_task_features

    task = prepare("co2", None, None, False, [12])
    _FEATURES.clear()
    first = cached_task_features(task, 12)
    assert len(_FEATURES) == 1 and cached_task_features(task, 12) is first
    x = task.x[:task.splits["train"][1], task.n_covariates:]
    assert np.allclose(first, task_features(x, 12, task.univariate, load_reference()))
    assert not np.allclose(cached_task_features(task, 48), first)  # the horizon is a key
