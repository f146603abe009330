"""Asynchronous successive halving (ASHA; Li et al., "A System for Massively Parallel
Hyperparameter Tuning", MLSys 2020, Algorithm 2) over training length, around any strategy.

Rung k trains for ``rungs[k]`` iterations. Whenever a worker frees, ASHA looks from the
second-highest rung down for a configuration in the top ``1/eta`` of its rung's finished
results that has not been promoted yet and promotes it to the next rung; only when there is
none does it ask the wrapped strategy for a new configuration at rung 0. Promotions are
decided as results arrive, so no worker waits for a rung to fill. Every rung result is a
trial of its own (a run-store row with its ``rung``); a promoted configuration is trained
again from its initialisation for the longer length (same seed: a rung-k result equals what
a single-fidelity run at ``rungs[k]`` iterations would give).
"""
from __future__ import annotations

import itertools
import math

from .base import Strategy, check_int, fitness

#: Default rungs (training iterations; the last is TS2Vec's 200 for a small training set)
#: and reduction factor.
RUNGS = (25, 75, 200)
ETA = 3


def check_rungs(rungs, eta) -> None:
    """Refuse bad ASHA options.

    Raises:
        ValueError: ``rungs`` not a strictly increasing list of at least two ints >= 1, or
            ``eta`` not an int >= 2.
    """
    ok = (isinstance(rungs, (list, tuple)) and len(rungs) >= 2
          and all(isinstance(r, int) and not isinstance(r, bool) and r >= 1 for r in rungs)
          and all(a < b for a, b in itertools.pairwise(rungs)))
    if not ok:
        raise ValueError(f"rungs: got {rungs!r}; allowed: at least two increasing training "
                         "iteration counts, e.g. 25,75,200")
    check_int("eta", eta, 2)


class AshaStrategy(Strategy):
    """ASHA around ``base`` (the strategy that proposes new configurations at rung 0 and is
    told their rung-0 results only, so that it compares equal fidelities).

    ``ask(n)`` returns ``(spec_hash, spec, rung)`` triples; at most ``trials`` in all
    (promotions included).

    Raises:
        ValueError: see :func:`check_rungs`; ``trials`` < 1.
    """

    def __init__(self, base: Strategy, trials: int, rungs=RUNGS, eta: int = ETA):
        check_int("trials", trials)
        check_rungs(rungs, eta)
        self.base, self.trials, self.rungs, self.eta = base, trials, tuple(rungs), eta
        self.results = [{} for _ in self.rungs]  # rung -> {spec_hash: fitness}
        self.promoted = [set() for _ in self.rungs]  # rung -> hashes sent to the next rung
        self.specs: dict = {}
        self.asked = 0

    def ask(self, n: int) -> list:
        out = []
        while len(out) < n and self.asked < self.trials:
            job = self._promotion() or self._new()
            if job is None:
                break
            out.append(job)
            self.asked += 1
        return out

    def _promotion(self):
        """The best unpromoted configuration in the top 1/eta of the highest possible rung,
        as a job at the next rung (None if no rung has one)."""
        for k in reversed(range(len(self.rungs) - 1)):
            done = self.results[k]
            quota = math.floor(len(done) / self.eta)
            top = sorted(done.items(), key=lambda kv: (kv[1], kv[0]))[:quota]
            for h, value in top:
                if h not in self.promoted[k] and math.isfinite(value):
                    self.promoted[k].add(h)
                    return h, self.specs[h], k + 1
        return None

    def _new(self):
        pairs = self.base.ask(1)
        if not pairs:
            return None
        h, spec = pairs[0]
        self.specs[h] = spec
        return h, spec, 0

    def tell(self, spec: dict, row: dict) -> None:
        rung = row.get("rung") or 0
        self.results[rung][row["spec_hash"]] = fitness(row)
        self.specs.setdefault(row["spec_hash"], spec)
        if rung == 0:
            self.base.tell(spec, row)
