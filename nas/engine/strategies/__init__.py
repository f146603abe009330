"""Search strategies behind one ask/tell interface (:class:`Strategy`): ``random``
(:class:`RandomStrategy`), ``evolution`` (regularised evolution,
:class:`~.evolution.EvolutionStrategy`), ``tpe`` (Optuna's TPE, :class:`~.tpe.TPEStrategy`)
and ``guided`` (evolution with comparator-ranked mutations, :class:`~.guided.GuidedStrategy`);
:func:`make_strategy` builds one by name, at a single fidelity or inside asynchronous successive
halving (``fidelity="asha"``, :class:`~.asha.AshaStrategy`). Exact resume of any of them:
:mod:`.replay`.
"""
from __future__ import annotations

from .asha import ETA, RUNGS, AshaStrategy, check_rungs
from .base import RandomStrategy, Strategy, check_int, fitness, plan_specs
from .evolution import EvolutionStrategy
from .guided import GuidedStrategy
from .replay import LOG_NAME, AskTellLog, job_of, replay
from .tpe import TPEStrategy

STRATEGIES = ("random", "evolution", "tpe", "guided")
FIDELITIES = ("none", "asha")
#: Strategy options (config keys) and their defaults.
STRATEGY_DEFAULTS = {"strategy": "random", "population": 16, "sample_size": 4,
                     "fidelity": "none", "rungs": list(RUNGS), "eta": ETA}

__all__ = [
    "FIDELITIES",
    "LOG_NAME",
    "STRATEGIES",
    "STRATEGY_DEFAULTS",
    "AshaStrategy",
    "AskTellLog",
    "EvolutionStrategy",
    "GuidedStrategy",
    "RandomStrategy",
    "Strategy",
    "TPEStrategy",
    "check_fidelity",
    "check_int",
    "check_strategy",
    "fitness",
    "job_of",
    "make_strategy",
    "plan_specs",
    "replay",
    "with_fidelity",
]


def check_strategy(name, population=16, sample_size=4) -> None:
    """Refuse a bad strategy name or evolution option before any work.

    Raises:
        ValueError: unknown ``strategy``; ``population`` / ``sample_size`` not an int >= 1
            (population >= 2 so a tournament has a choice), or sample_size > population.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy: got {name!r}; allowed: {', '.join(STRATEGIES)}")
    check_int("population", population, 2)
    check_int("sample_size", sample_size)
    if sample_size > population:
        raise ValueError(f"sample_size: got {sample_size}; allowed: at most "
                         f"population={population}")


def check_fidelity(fidelity, rungs=RUNGS, eta=ETA) -> None:
    """Refuse a bad fidelity schedule before any work.

    Raises:
        ValueError: unknown ``fidelity``; bad ``rungs`` / ``eta`` (see
            :func:`~.asha.check_rungs`).
    """
    if fidelity not in FIDELITIES:
        raise ValueError(f"fidelity: got {fidelity!r}; allowed: {', '.join(FIDELITIES)}")
    check_rungs(rungs, eta)


def make_strategy(name: str, trials: int, seed: int = 0, spatial: bool = True,
                  extra: list = (), population: int = 16, sample_size: int = 4,
                  initial: list = (), comparator=None) -> Strategy:
    """The named strategy. Every strategy proposes the ts2vec preset first, then the user's
    ``extra`` specs; evolution and guided then their ``initial`` members (e.g. the
    comparator's top-ranked candidates), TPE enqueues them.

    Args:
        comparator: ``(model, task_feature)``, required by ``guided``.

    Raises:
        ValueError: see :func:`check_strategy`; ``guided`` without a comparator; bad trials
            or specs (from the strategy).
    """
    check_strategy(name, population, sample_size)
    if name == "random":
        return RandomStrategy(trials, seed, spatial, extra)
    try:
        first = [*extra, *initial]
        if name == "tpe":
            return TPEStrategy(trials, seed, spatial, first)
        if name == "evolution":
            return EvolutionStrategy(trials, seed, spatial, population, sample_size, first)
        if comparator is None:
            raise ValueError("comparator: got None; allowed: a (model, task_feature) pair "
                             "for strategy 'guided'")
        return GuidedStrategy(trials, comparator, seed, spatial, population, sample_size, first)
    except ValueError as exc:
        text = str(exc)
        if text.startswith("initial: spec ") and int(text.split()[2].rstrip(":")) <= len(extra):
            raise ValueError("extra_specs" + text[len("initial"):]) from None
        raise


def with_fidelity(strategy: Strategy, fidelity: str, trials: int, rungs=RUNGS,
                  eta: int = ETA) -> Strategy:
    """``strategy`` itself for ``fidelity="none"``; for ``"asha"`` an
    :class:`~.asha.AshaStrategy` that takes its new configurations from it (``trials`` then
    counts every rung's trials).

    Raises:
        ValueError: see :func:`check_fidelity`.
    """
    check_fidelity(fidelity, rungs, eta)
    return strategy if fidelity == "none" else AshaStrategy(strategy, trials, rungs, eta)
