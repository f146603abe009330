"""The ask/tell seam of the search engine: RandomStrategy proposes exactly the specs (and
order) of the former ``plan_specs``, in any chunking of ``ask``, each hashed once."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import search_spaces as ss
from nas.engine import strategies
from nas.engine.strategies import RandomStrategy, Strategy, plan_specs


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

    monkeypatch.setattr(strategies.ss, "spec_hash", counting)
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
    with pytest.raises(NotImplementedError):
        Strategy().ask(1)
    assert Strategy().tell(ss.preset("ts2vec"), {"status": "ok"}) is None
