"""Asynchronous successive halving (ASHA) around the search strategies: the promotion rule of
Li et al. (2020, Algorithm 2), no idle worker, the wrapped strategy told rung-0 results only,
exact replay of a killed run across rungs, and the run store's ``rung`` column (also on a
store written before it existed)."""
from __future__ import annotations

import math
import sqlite3

import pytest

import search_spaces as ss
from nas.engine.store import RunStore
from nas.engine.strategies import (
    AshaStrategy,
    AskTellLog,
    RandomStrategy,
    check_fidelity,
    job_of,
    make_strategy,
    replay,
    with_fidelity,
)

RUNGS = (2, 6, 18)


def objective(spec: dict, rung: int) -> float:
    """A synthetic val_mse that falls with training length; NaN (failed) for the largest lr."""
    if spec["Train"]["lr"] == 3e-3:
        return math.nan
    enc = spec["Encoder"]
    return enc["layers"] / 10 + enc["hidden"] / 128 + 1.0 / RUNGS[rung]


def row_of(trial: int, h: str, spec: dict, rung: int) -> dict:
    value = objective(spec, rung)
    ok = math.isfinite(value)
    return {"trial": trial, "spec_hash": h, "spec": spec, "rung": rung,
            "finished_at": float(trial), "status": "ok" if ok else "failed",
            "val_mse": value if ok else None}


def build(base: str = "evolution", trials: int = 40, seed: int = 5) -> AshaStrategy:
    inner = make_strategy(base, trials, seed, False, population=6, sample_size=3)
    return with_fidelity(inner, "asha", trials, list(RUNGS), 3)


def async_events(strategy, trials: int, workers: int = 2) -> list:
    """Drive ``strategy`` as the runner does (``workers`` slots, trial i lasting
    1 + (i * 7 % 5) units times its rung's length); -> ("ask", trial, hash, spec, rung) and
    ("tell", row) events."""
    events, running, clock, asked = [], [], 0.0, 0
    while True:
        while len(running) < workers and asked < trials:
            job = job_of(strategy.ask(1))
            if job is None:
                break
            events.append(("ask", asked, *job))
            running.append((clock + (1 + asked * 7 % 5) * (1 + job[2]), asked, *job))
            asked += 1
        if not running:
            return events
        running.sort(key=lambda r: (r[0], r[1]))
        clock, i, h, spec, rung = running.pop(0)
        row = row_of(i, h, spec, rung)
        strategy.tell(spec, row)
        events.append(("tell", row))


def test_promotions_follow_the_top_third_of_each_rung_as_results_arrive():
    events = async_events(build(), 40)
    results = [[] for _ in RUNGS]  # rung -> (fitness, hash) told so far
    promoted = [set() for _ in RUNGS]
    for e in events:
        if e[0] == "tell":
            row = e[1]
            value = row["val_mse"] if row["status"] == "ok" else math.inf
            results[row["rung"]].append((value, row["spec_hash"]))
            continue
        _, _, h, _, rung = e
        if rung == 0:  # a new configuration only when no rung had a promotable one
            for k in range(len(RUNGS) - 1):
                top = sorted(results[k])[:len(results[k]) // 3]
                assert all(x in promoted[k] or not math.isfinite(v) for v, x in top)
            continue
        top = sorted(results[rung - 1])[:len(results[rung - 1]) // 3]
        assert h in {x for _, x in top} and h not in promoted[rung - 1]
        promoted[rung - 1].add(h)
    per_rung = [sum(1 for e in events if e[0] == "ask" and e[4] == k) for k in range(3)]
    assert sum(per_rung) == 40 and per_rung[1] >= 1 and per_rung[2] >= 1
    assert per_rung[0] > per_rung[1] > per_rung[2]


def test_the_wrapped_strategy_sees_rung_zero_only_and_failures_are_never_promoted():
    seen = []

    class Spy(RandomStrategy):
        def tell(self, spec, row):
            seen.append(row["rung"])

    asha = AshaStrategy(Spy(60, seed=2, spatial=False), 60, list(RUNGS), 3)
    events = async_events(asha, 60)
    assert seen and set(seen) == {0}
    failed = {e[1]["spec_hash"] for e in events if e[0] == "tell" and e[1]["status"] != "ok"}
    assert failed and not failed & {e[2] for e in events if e[0] == "ask" and e[4] > 0}


def test_no_worker_idles_while_trials_remain():
    """Every ask returns a job (a promotion or a new configuration) until ``trials``."""
    asha = build(trials=12)
    assert len(asha.ask(5)) == 5  # nothing told yet: new configurations at rung 0
    assert len(asha.ask(20)) == 7 and asha.ask(1) == []


@pytest.mark.parametrize("cut", [9, 20])
def test_a_killed_asha_run_resumes_with_exactly_the_same_jobs(cut, tmp_path):
    """Replay the ask/tell log (rungs included) and the stored rows after the ``cut``-th
    result; every later job (hash and rung) is the uninterrupted run's."""
    events = async_events(build(), 40)
    tells = [k for k, e in enumerate(events) if e[0] == "tell"]
    k = tells[cut] + 1
    log = AskTellLog(tmp_path)
    for e in events[:k]:
        log.ask(e[1], e[2], e[4]) if e[0] == "ask" else log.tell(e[1]["trial"])
    rows = [e[1] for e in events[:k] if e[0] == "tell"]
    resumed = build()
    unfinished, asked = replay(resumed, log, rows)
    stored = {r["trial"] for r in rows}
    running = [(e[1], e[2], e[4]) for e in events[:k] if e[0] == "ask" and e[1] not in stored]
    assert [(u[0], u[1], u[3]) for u in unfinished] == running
    assert asked == len(running) + len(rows)
    for e in events[k:]:
        if e[0] == "ask":
            job = job_of(resumed.ask(1))
            assert (job[0], job[2]) == (e[2], e[4])
        else:
            resumed.tell(e[1]["spec"], e[1])
    assert resumed.ask(1) == []
    other = build(seed=6)
    with pytest.raises(ValueError, match=r"^strategy: asked \S+ as trial \d+ where the run"):
        replay(other, log, rows)


def test_fidelity_options_are_refused_with_the_argument_named():
    with pytest.raises(ValueError, match=r"^fidelity: got 'hyperband'; allowed: none, asha$"):
        check_fidelity("hyperband")
    for rungs in ([25], [75, 25], [25, 25], [0, 5], "25,75", [2.5, 5]):
        with pytest.raises(ValueError, match=r"^rungs: got .*; allowed: at least two"):
            check_fidelity("asha", rungs, 3)
    with pytest.raises(ValueError, match=r"^eta: got 1; allowed: an int >= 2$"):
        check_fidelity("asha", [25, 75], 1)
    plain = RandomStrategy(3)
    assert with_fidelity(plain, "none", 3) is plain


def test_the_store_holds_a_spec_once_per_rung_and_reads_old_stores(tmp_path):
    spec = ss.preset("ts2vec")
    h = ss.spec_hash(spec)
    store = RunStore(tmp_path / "new")
    for trial, rung in ((0, 0), (1, 1), (2, 1)):  # the third repeats (hash, rung 1): ignored
        store.add_trial({"trial": trial, "spec_hash": h, "spec": spec, "seed": 0,
                         "status": "ok", "val_mse": 0.1, "rung": rung})
    assert [(r["trial"], r["rung"]) for r in store.trials()] == [(0, 0), (1, 1)]
    store.close()
    old = tmp_path / "old"  # a store written before the rung column existed
    old.mkdir()
    db = sqlite3.connect(old / "run.sqlite")
    db.executescript("""
        CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE trials (trial INTEGER PRIMARY KEY, spec_hash TEXT NOT NULL UNIQUE,
            spec TEXT NOT NULL, seed INTEGER NOT NULL, status TEXT NOT NULL, val_mse REAL,
            metrics TEXT, n_params INTEGER, seconds REAL, node TEXT, versions TEXT,
            error TEXT, finished_at REAL);""")
    db.execute("INSERT INTO trials (trial, spec_hash, spec, seed, status, val_mse) VALUES "
               "(0, ?, '{}', 0, 'ok', 0.2)", (h,))
    db.commit()
    db.close()
    readonly = RunStore(old, readonly=True)
    assert [(r["trial"], r["rung"]) for r in readonly.trials()] == [(0, 0)]
    readonly.close()
    store = RunStore(old)  # opened for writing: the column is added
    store.add_trial({"trial": 1, "spec_hash": "b" * 16, "spec": spec, "seed": 0,
                     "status": "ok", "val_mse": 0.3})
    assert [(r["trial"], r["rung"]) for r in store.trials()] == [(0, 0), (1, 0)]
    store.close()


def test_a_resumed_run_whose_best_trial_changed_recomputes_its_test_and_gains(tmp_path):
    """``finalize`` reuses best_test.json / best_encoder.pt only for the same best trial
    (a longer budget or a promotion can change it), training_gain.json only for the same
    top rows; best_trial.json is written with the test files, so a first run records it."""
    from nas.engine.finalize import _best_record, _stored, gain_rows, needs_test
    from nas.engine.results import leaderboard, write_json

    spec = ss.preset("ts2vec")
    rows = [{"trial": i, "spec_hash": h, "spec": spec, "status": "ok", "val_mse": v, "rung": k}
            for i, (h, v, k) in enumerate([("a", 0.3, 0), ("b", 0.2, 0), ("a", 0.4, 1)])]
    board = leaderboard(rows)
    assert [r["trial"] for r in board] == [2, 1, 0]  # the longer training first
    assert [r["trial"] for r in gain_rows(board)] == [2, 1]  # one row per spec
    assert needs_test(tmp_path, board[0])  # nothing computed yet
    (tmp_path / "best_test.json").write_text("{}")
    (tmp_path / "best_encoder.pt").write_bytes(b"x")
    assert needs_test(tmp_path, board[0])  # files of an unrecorded best (an older run)
    write_json(_best_record(board[0]), tmp_path / "best_trial.json")
    assert not needs_test(tmp_path, board[0]) and not needs_test(tmp_path, board[0])
    assert needs_test(tmp_path, board[1])
    (tmp_path / "best_encoder.pt").unlink()
    assert needs_test(tmp_path, board[0])
    write_json({"2": {}, "1": {}}, tmp_path / "gains.json")
    fresh = lambda b: lambda v: set(v) == {str(r["trial"]) for r in gain_rows(b)}  # noqa: E731
    assert _stored(tmp_path / "gains.json", fresh(board)) == {"2": {}, "1": {}}
    assert _stored(tmp_path / "gains.json", fresh(leaderboard(rows[:2]))) is None  # stale
    (tmp_path / "gains.json").write_text('{"2": ')  # cut off by an older writer
    assert _stored(tmp_path / "gains.json") is None


def test_the_printed_leaderboard_shows_training_iterations_and_horizons_in_order():
    from nas.cli.report import format_leaderboard
    from nas.engine.results import leaderboard

    metrics = {h: {"val": {"mse": 0.1, "mae": 0.2}} for h in ("4", "12")}
    rows = [{"trial": i, "spec_hash": h * 16, "status": "ok", "val_mse": v, "rung": k,
             "metrics": metrics, "n_params": 10, "seconds": 1.0}
            for i, (h, v, k) in enumerate([("a", 0.1, 0), ("b", 0.2, 0), ("b", 0.3, 1)])]
    test = {"test": {"mse": 0.3, "mae": 0.4, "mse_raw": 3.0}}
    summary = {"config": {"horizons": [4, 12], "fidelity": "asha", "rungs": [25, 200]},
               "n_trials": 3, "n_failed": 0, "run_dir": "r", "references": {},
               "leaderboard": leaderboard(rows), "best_test": {"12": test, "4": test}}
    lines = format_leaderboard(summary).splitlines()
    first = next(line for line in lines if line.strip().startswith("1 "))
    assert "bbbb" in first and " 200 " in first and any("iters" in line for line in lines)
    assert "200 training iterations" in "\n".join(lines)
    tests = [line for line in lines if line.strip().startswith("H=")]
    assert [line.split(":")[0].strip() for line in tests] == ["H=4", "H=12"]
