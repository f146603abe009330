"""Regularised (aging) evolution as an asynchronous ask/tell search strategy.

Real, Aggarwal, Huang and Le, "Regularized Evolution for Image Classifier Architecture Search",
AAAI 2019: a population of the ``population`` most recent results; each child is a mutation
(:func:`search_spaces.mutate`) of the best of ``sample_size`` members drawn uniformly without
replacement (the tournament, best = lowest validation MSE), and each new result pushes the
oldest member out (age-based removal, not the worst). Asynchronous as in the paper's
distributed version: a result joins the population when it is told, and ``ask`` while results
are outstanding never waits: until ``population`` results are in, it proposes initial
members (the ts2vec preset, the given ``initial`` specs, then uniform random samples).
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

import search_spaces as ss

from .base import SequentialStrategy, check_int, fitness

MAX_REDRAWS = 100  # mutations of a parent tried before a repeated spec is given up on


class EvolutionStrategy(SequentialStrategy):
    """Regularised evolution (see the module docstring) over at most ``trials`` distinct specs.

    Args:
        trials: number of specs to propose in all.
        seed: seeds every random draw (``numpy.random.default_rng(seed)``).
        spatial: allow the spatial encoder ops (correlated multi-variable data).
        population: P, members kept (the P most recently told results).
        sample_size: S <= P, members drawn per tournament.
        initial: specs proposed first, after the ts2vec preset (e.g. the comparator's
            top-ranked candidates for the task); repeats are skipped.

    ``ask(n)`` is ``n`` single asks, so the proposals depend only on the order of asks and
    tells, not on how they are chunked. Failed, diverged and timed-out trials have fitness
    +inf (the worst).

    Raises:
        ValueError: trials, population or sample_size not an int >= 1, sample_size >
            population, or an invalid initial spec (named ``initial: spec <i>: ...``).
    """

    def __init__(self, trials: int, seed: int = 0, spatial: bool = True, population: int = 16,
                 sample_size: int = 4, initial: list = ()):
        for name, value in (("trials", trials), ("population", population),
                            ("sample_size", sample_size)):
            check_int(name, value)
        if sample_size > population:
            raise ValueError(f"sample_size: got {sample_size}; allowed: at most "
                             f"population={population}")
        self.trials, self.spatial = trials, spatial
        self.population_size, self.sample_size = population, sample_size
        self.rng = np.random.default_rng(seed)
        self.seen: set = set()
        self.queue: list = []
        for i, spec in enumerate([ss.preset("ts2vec"), *initial]):
            try:
                self._keep(spec, self.queue)
            except ValueError as exc:
                raise ValueError(f"initial: spec {i}: {exc}") from None
        self.population: deque = deque()  # (spec, fitness), oldest first
        self.asked = 0

    def _keep(self, spec: dict, out: list) -> bool:
        h = ss.spec_hash(spec)
        if h in self.seen:
            return False
        self.seen.add(h)
        out.append((h, spec))
        return True

    def _ask_one(self) -> tuple:
        if len(self.population) < self.population_size:
            return self._initial_member()
        winner = self.tournament()
        fresh = []
        if not self._keep_child(winner, fresh):
            while not fresh:  # the parent's neighbourhood is exhausted: a random member
                self._keep(ss.sample(self.rng, spatial=self.spatial), fresh)
        return fresh[0]

    def _initial_member(self) -> tuple:
        if self.queue:
            return self.queue.pop(0)
        fresh = []
        while not fresh:
            self._keep(ss.sample(self.rng, spatial=self.spatial), fresh)
        return fresh[0]

    def tournament(self) -> dict:
        """The best (lowest fitness; the earliest drawn on a tie) of ``sample_size`` members
        drawn without replacement; -> its spec."""
        picks = self.rng.choice(len(self.population), size=self.sample_size, replace=False)
        best = min(picks, key=lambda i: self.population[i][1])
        return self.population[best][0]

    def _keep_child(self, parent: dict, out: list) -> bool:
        """Append one unseen mutation of ``parent`` to ``out``; False after
        :data:`MAX_REDRAWS` repeats."""
        for _ in range(MAX_REDRAWS):
            if self._keep(self.child(parent), out):
                return True
        return False

    def child(self, parent: dict) -> dict:
        """One mutation of ``parent`` (:func:`search_spaces.mutate`); subclasses choose
        among several."""
        return ss.mutate(parent, self.rng, spatial=self.spatial)

    def tell(self, spec: dict, row: dict) -> None:
        """Add the result as the youngest member; the oldest leaves when P are exceeded."""
        self.population.append((spec, fitness(row)))
        if len(self.population) > self.population_size:
            self.population.popleft()

    def best(self) -> float:
        """The lowest fitness in the population (inf when empty or all failed)."""
        return min((f for _, f in self.population), default=math.inf)
