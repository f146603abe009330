"""The ask/tell interface of a search strategy, uniform random search, and what every strategy
shares (argument checks, the fitness of a run-store row).

The runner (:class:`nas.engine.runner.Search`) asks a strategy for at most as many specs as it
has free worker slots, runs them, and tells the strategy each finished trial's run-store row.
A strategy must be deterministic for its seed: told the same rows between the same asks, it
asks the same specs in the same order (see :mod:`nas.engine.strategies.replay` for how a
resumed run restores that sequence).
"""
from __future__ import annotations

import abc
import math

import numpy as np

import search_spaces as ss


def check_int(name: str, value, low: int = 1) -> None:
    """Refuse ``value`` unless it is an int >= ``low`` (bools refused).

    Raises:
        ValueError: ``<name>: got <value>; allowed: an int >= <low>``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}: got {value!r}; allowed: an int >= {low}")


def fitness(row: dict) -> float:
    """The score a strategy minimises: the row's ``val_mse`` when its status is ``ok`` and the
    value finite, else +inf (failed, diverged, timed-out and ``degenerate`` trials -- whose
    loss curve shows nothing was learned, even with a finite ``val_mse`` -- count as the
    worst)."""
    value = row.get("val_mse")
    if row.get("status") != "ok" or value is None or not math.isfinite(value):
        return math.inf
    return float(value)


class Strategy(abc.ABC):
    """The ask/tell interface of a search strategy.

    ``ask(n)`` returns up to ``n`` new ``(spec_hash, spec)`` pairs (the hash is the spec's
    identity in the run store; a strategy needs it to avoid repeats anyway, so the runner
    reuses it instead of validating the spec a second time); an empty list means the strategy
    has nothing more to propose. ``tell(spec, row)`` reports a finished trial (``row`` as
    written to the run store: ``status``, ``val_mse``, ...; also called for trials a resumed
    run finds already done).
    """

    @abc.abstractmethod
    def ask(self, n: int) -> list:
        """Up to ``n`` new ``(spec_hash, spec)`` pairs; every concrete strategy defines it."""

    def tell(self, spec: dict, row: dict) -> None:
        """Default: ignore the result (a strategy that does not learn from trials)."""


class SequentialStrategy(Strategy):
    """A strategy that proposes one spec at a time: subclasses set ``trials`` and ``asked``
    (= 0) and implement ``_ask_one() -> (spec_hash, spec)``."""

    def ask(self, n: int) -> list:
        out = []
        while len(out) < n and self.asked < self.trials:
            out.append(self._ask_one())
            self.asked += 1
        return out


class RandomStrategy(Strategy):
    """The ``ts2vec`` preset, the user's ``extra`` specs, then distinct uniform samples of the
    space (:func:`search_spaces.sample`, drawn from ``numpy.random.default_rng(seed)``), up to
    ``trials`` specs in all; duplicates (by :func:`search_spaces.spec_hash`) are skipped.

    Raises:
        ValueError: ``trials`` is not an int >= 1, or an extra spec is invalid (named
            ``extra_specs: spec <i>: ...``).
    """

    def __init__(self, trials: int, seed: int = 0, spatial: bool = True, extra: list = ()):
        check_int("trials", trials)
        self.trials, self.spatial = trials, spatial
        self.rng = np.random.default_rng(seed)
        self.seen: set = set()
        self.queue: list = []  # fixed specs not yet asked: the preset, then the extras
        self._keep(ss.preset("ts2vec"), self.queue)
        for i, spec in enumerate(extra, start=1):
            try:
                self._keep(spec, self.queue)
            except ValueError as exc:
                raise ValueError(f"extra_specs: spec {i}: {exc}") from None
        self.asked = 0

    def _keep(self, spec: dict, out: list) -> None:
        """Append ``(hash, spec)`` to ``out`` unless the spec was seen (one hash per spec)."""
        h = ss.spec_hash(spec)
        if h not in self.seen:
            self.seen.add(h)
            out.append((h, spec))

    def ask(self, n: int) -> list:
        out = []
        while len(out) < n and self.asked < self.trials:
            if self.queue:
                out.append(self.queue.pop(0))
                self.asked += 1
                continue
            fresh = []
            while not fresh:
                self._keep(ss.sample(self.rng, spatial=self.spatial), fresh)
            out += fresh
            self.asked += 1
        return out


def plan_specs(trials: int, seed: int, spatial: bool, extra: list = ()) -> list:
    """Every spec :class:`RandomStrategy` proposes for ``trials`` trials, in order."""
    return [spec for _, spec in RandomStrategy(trials, seed, spatial, extra).ask(trials)]
