"""The ask/tell seam of the search engine: RandomStrategy proposes exactly the specs (and
order) of the former ``plan_specs``, in any chunking of ``ask``, each hashed once; evolution,
TPE and guided propose valid, distinct, seed-deterministic specs, do what their methods say
(tournament and aging, TPE beating random on a synthetic objective, K comparator-ranked
mutations and fine-tuning), and resume exactly from the ask/tell log (no Ray here)."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import optuna
import pytest
import torch

import search_spaces as ss
from nas.engine import strategies
from nas.engine.strategies import (
    AskTellLog,
    EvolutionStrategy,
    GuidedStrategy,
    RandomStrategy,
    Strategy,
    make_strategy,
    plan_specs,
    replay,
)
from nas.engine.strategies.tpe import build_spec, spec_params
from nas.zeroshot.comparators import load_trained


def former_plan_specs(budget: int, seed: int, spatial: bool, extra: list = ()) -> list:
    """``nas.runner.plan_specs`` before the strategies (copied): what old runs planned."""
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


def hashes(specs) -> list:
    return [ss.spec_hash(s) for s in specs]


@pytest.mark.parametrize("trials, seed, spatial", [(1, 0, False), (6, 0, False), (12, 3, True)])
def test_random_strategy_reproduces_the_former_plan(trials, seed, spatial):
    extra = [ss.sample(np.random.default_rng(99), spatial=False), ss.preset("ts2vec")]
    for given in ([], extra):
        want = hashes(former_plan_specs(trials, seed, spatial, given))
        assert hashes(plan_specs(trials, seed, spatial, given)) == want
        strategy = RandomStrategy(trials, seed, spatial, given)
        asked = []
        for n in (1, 2, 3, 100):  # the runner asks as slots free: chunking must not matter
            asked += strategy.ask(n)
        assert [h for h, _ in asked] == want
        assert [ss.spec_hash(s) for _, s in asked] == want  # the pairs carry the right hash
        assert strategy.ask(5) == []


def test_every_spec_is_hashed_once(monkeypatch):
    calls = Counter()
    real = ss.spec_hash

    def counting(spec):
        h = real(spec)
        calls[h] += 1
        return h

    monkeypatch.setattr(ss, "spec_hash", counting)
    asked = RandomStrategy(8, 1, True).ask(8)
    assert len(asked) == 8 and set(calls) >= {h for h, _ in asked}
    assert all(calls[h] == 1 for h, _ in asked)


def test_bad_trials_and_extra_specs_name_the_argument():
    with pytest.raises(ValueError, match=r"^trials: got 0; allowed: an int >= 1$"):
        RandomStrategy(0)
    with pytest.raises(ValueError, match="trials: got True"):
        RandomStrategy(True)
    bad = ss.preset("ts2vec")
    bad["Train"]["lr"] = 5
    with pytest.raises(ValueError, match=r"^extra_specs: spec 2: Train\.lr: got 5"):
        RandomStrategy(3, extra=[ss.sample(1), bad])


def test_the_base_strategy_is_an_interface():
    with pytest.raises(TypeError, match="abstract"):
        Strategy()

    class Fixed(Strategy):
        def ask(self, n):
            return []

    assert Fixed().tell(ss.preset("ts2vec"), {"status": "ok"}) is None


# --------------------------------------------------------------- evolution, TPE, guided


def objective(spec: dict) -> float:
    """A synthetic val_mse with structure a model can learn: small, shallow encoders of the
    TS2Vec conv with few augmentations score best; NaN (a failed trial) for the largest lr."""
    enc = spec["Encoder"]
    if spec["Train"]["lr"] == 3e-3:
        return math.nan
    return (enc["layers"] / 10 + enc["hidden"] / 128 + 0.2 * len(spec["AugCell1"])
            + 0.5 * sum(op != "ts2vec_conv" for _, op in enc["cell"]) / len(enc["cell"]))


def row_of(trial: int, spec_hash: str, spec: dict) -> dict:
    value = objective(spec)
    ok = math.isfinite(value)
    return {"trial": trial, "spec_hash": spec_hash, "spec": spec, "finished_at": float(trial),
            "status": "ok" if ok else "failed", "val_mse": value if ok else None}


@pytest.fixture(scope="module")
def tahc():
    model, _ = load_trained()
    feature = np.random.default_rng(0).normal(size=model.config["n_task_features"])
    return model, feature.astype(np.float32)


def build(name: str, trials: int, seed: int, tahc=None, **kw):
    if name == "guided":
        return GuidedStrategy(trials, tahc, seed, False, population=6, sample_size=3,
                              k_mutations=8, finetune_every=4, **kw)
    return make_strategy(name, trials, seed, False, population=6, sample_size=3, **kw)


def async_events(strategy, trials: int, workers: int = 2) -> list:
    """Drive ``strategy`` as the runner does with ``workers`` slots and trial i lasting
    1 + (i * 7 % 5) time units; -> the events ("ask", trial, hash, spec) / ("tell", row)."""
    events, running, clock, asked = [], [], 0.0, 0
    while True:
        while len(running) < workers and asked < trials:
            pairs = strategy.ask(1)
            if not pairs:
                break
            events.append(("ask", asked, *pairs[0]))
            running.append((clock + 1 + asked * 7 % 5, asked, *pairs[0]))
            asked += 1
        if not running:
            return events
        running.sort()
        clock, i, h, spec = running.pop(0)
        row = row_of(i, h, spec)
        strategy.tell(spec, row)
        events.append(("tell", row))


STRATEGY_NAMES = ["random", "evolution", "tpe", "guided"]


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_asks_are_valid_distinct_and_deterministic(name, tahc):
    first = async_events(build(name, 14, 3, tahc), 14)
    asked = [e for e in first if e[0] == "ask"]
    assert len(asked) == 14 and asked[0][2] == ss.spec_hash(ss.preset("ts2vec"))
    assert len({e[2] for e in asked}) == 14
    assert all(ss.spec_hash(ss.validate(e[3])) == e[2] for e in asked)
    again = async_events(build(name, 14, 3, tahc), 14)
    assert [e[2] for e in again if e[0] == "ask"] == [e[2] for e in asked]
    other = async_events(build(name, 14, 4, tahc), 14)
    if name != "random":  # random's trials are independent of the results
        assert [e[2] for e in other if e[0] == "ask"] != [e[2] for e in asked]


def fake_row(fitness: float, status: str = "ok") -> dict:
    return {"status": status, "val_mse": fitness if status == "ok" else None}


def test_evolution_tournament_takes_the_best_of_the_sample_and_ages_out_the_oldest():
    evo = EvolutionStrategy(20, seed=0, spatial=False, population=3, sample_size=3)
    members = [ss.sample(i, spatial=False) for i in range(4)]
    for spec, value in zip(members, [0.5, 0.2, 0.9]):
        evo.tell(spec, fake_row(value))
    assert evo.tournament() == members[1]  # S = P: the best member always wins
    parents = []
    evo.child = lambda parent: parents.append(parent) or ss.mutate(parent, evo.rng, False)
    _, child = evo.ask(1)[0]
    assert parents[0] == members[1] and child != members[1]
    evo.tell(members[3], fake_row(1.0, status="failed"))  # failed: fitness inf, the worst
    assert [s for s, _ in evo.population] == members[1:]  # the oldest (0.5) left
    assert [f for _, f in evo.population] == [0.2, 0.9, math.inf]
    evo.tell(child, fake_row(0.3))  # the best (0.2) is now the oldest and leaves: aging
    assert [f for _, f in evo.population] == [0.9, math.inf, 0.3]
    small = EvolutionStrategy(20, seed=0, spatial=False, population=3, sample_size=1)
    for spec, value in zip(members, [0.5, 0.2, 0.9]):
        small.tell(spec, fake_row(value))
    drawn = {ss.spec_hash(small.tournament()) for _ in range(30)}  # S = 1: any member
    assert drawn == {ss.spec_hash(s) for s in members[:3]}


def test_evolution_keeps_proposing_initial_members_while_results_are_outstanding():
    initial = [ss.sample(i, spatial=False) for i in (10, 11)]
    evo = EvolutionStrategy(10, seed=0, spatial=False, population=4, sample_size=2,
                            initial=initial)
    asked = [s for _, s in evo.ask(6)]  # nothing told: six initial members, no tournament
    assert ss.spec_hash(asked[0]) == ss.spec_hash(ss.preset("ts2vec"))
    assert asked[1:3] == initial and len(evo.population) == 0
    with pytest.raises(ValueError, match=r"^sample_size: got 5; allowed: at most population=4"):
        EvolutionStrategy(3, population=4, sample_size=5)
    with pytest.raises(ValueError, match=r"^initial: spec 1: Train\.lr: got 5"):
        EvolutionStrategy(3, initial=[{**ss.preset("ts2vec"), "Train": {
            **ss.preset("ts2vec")["Train"], "lr": 5}}])


def test_tpe_mirror_covers_the_space_both_ways():
    rng = np.random.default_rng(0)
    for spatial in (True, False):
        for _ in range(150):
            spec = ss.sample(rng, spatial=spatial)
            back = build_spec(optuna.trial.FixedTrial(spec_params(spec)), spatial)
            assert ss.spec_hash(back) == ss.spec_hash(spec)
    five = ss.preset("ts2vec")  # all five ordered augmentations, in a non-table order
    five["AugCell1"] = [{"name": n, "strength": 0.1} for n in
                        ("rescaling", "frequency_masking", "resize", "point_masking", "jitter")]
    back = build_spec(optuna.trial.FixedTrial(spec_params(five)))
    assert ss.canonical(back) == ss.canonical(five)


def mean_objective(name: str, trials: int, seed: int) -> float:
    events = async_events(build(name, trials, seed), trials)
    values = [e[1]["val_mse"] for e in events if e[0] == "tell"][trials // 2:]
    return float(np.mean([v if v is not None else 3.0 for v in values]))


def test_tpe_concentrates_on_a_synthetic_objective():
    """Later half of 50 trials, two seeds: TPE's proposals beat uniform random's on average."""
    tpe = np.mean([mean_objective("tpe", 50, s) for s in (0, 1)])
    rand = np.mean([mean_objective("random", 50, s) for s in (0, 1)])
    print(f"mean objective of trials 26-50: tpe {tpe:.3f}, random {rand:.3f}")
    assert tpe < 0.8 * rand


@pytest.mark.parametrize("name", STRATEGY_NAMES)
@pytest.mark.parametrize("cut", ["after_tell", "tell_not_logged"])
def test_a_resumed_strategy_asks_exactly_what_the_uninterrupted_one_asked(name, cut, tahc,
                                                                          tmp_path):
    """The run's events replayed from the ask/tell log and the stored rows (trials in flight
    at the kill are not stored; with ``tell_not_logged`` the last row reached the store but
    not the log), then the same later events: every later ask is the uninterrupted one's."""
    events = async_events(build(name, 16, 7, tahc), 16)
    tells = [k for k, e in enumerate(events) if e[0] == "tell"]
    k = tells[7] + 1  # the kill, right after the 8th result
    log = AskTellLog(tmp_path)
    for e in events[:k - (cut == "tell_not_logged")]:
        log.ask(e[1], e[2]) if e[0] == "ask" else log.tell(e[1]["trial"])
    rows = [e[1] for e in events[:k] if e[0] == "tell"]
    resumed = build(name, 16, 7, tahc)
    unfinished, asked = replay(resumed, log, rows)
    running = [e[1] for e in events[:k] if e[0] == "ask" and e[1] not in
               {r["trial"] for r in rows}]
    assert [u[0] for u in unfinished] == running and asked == len(running) + len(rows)
    for e in events[k:]:  # the rest of the run, event by event
        if e[0] == "ask":
            assert resumed.ask(1)[0][0] == e[2]
        else:
            resumed.tell(e[1]["spec"], e[1])
    assert resumed.ask(1) == []
    if name != "random":
        with pytest.raises(ValueError, match=r"^strategy: asked \S+ as trial \d+ where the run"):
            replay(build(name, 16, 8, tahc), log, rows)


def test_guided_ranks_k_mutations_and_fine_tunes_on_the_task(tahc, monkeypatch):
    guided = GuidedStrategy(30, tahc, 0, False, population=4, sample_size=2, k_mutations=8,
                            finetune_every=4)
    before = [p.detach().clone() for p in guided.model.parameters()]
    events = async_events(guided, 12)
    assert guided.finetunes == 3  # after results 4, 8 and 12
    assert any(not torch.equal(a, b) for a, b in zip(before, guided.model.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(before, tahc[0].parameters()))  # a copy
    pools = []
    real_rank = strategies.guided.cp.rank
    monkeypatch.setattr(strategies.guided.cp, "rank",
                        lambda m, specs, f: pools.append(specs) or real_rank(m, specs, f))
    _, child = guided.ask(1)[0]
    assert len(pools[0]) == 8 and child == pools[0][int(np.argmax(real_rank(
        guided.model, pools[0], guided.feature)))]
    assert len(events) == 24


def test_strategy_options_are_refused_with_the_argument_named(tahc):
    for kw, message in [({"name": "annealing"}, r"^strategy: got 'annealing'; allowed: random, "),
                        ({"population": 1}, r"^population: got 1; allowed: an int >= 2$"),
                        ({"sample_size": 0}, r"^sample_size: got 0; allowed: an int >= 1$"),
                        ({"name": "guided"}, r"^comparator: got None; allowed: a \(model")]:
        args = {"name": "evolution", "trials": 4, **kw}
        with pytest.raises(ValueError, match=message):
            make_strategy(**args)
