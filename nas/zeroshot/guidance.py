"""What the ``evolution`` and ``guided`` strategies need from the zero-shot layer (the engine
may not import it): the comparator-ranked initial population and, for ``guided``, the
comparator with the task's features. Passed to :func:`nas.engine.runner.search` as
``guidance``."""
from __future__ import annotations

#: Random candidates the shipped T-AHC ranks for an evolution's initial population.
GUIDE_SAMPLES = 2000


def strategy_inputs(task, config: dict) -> dict:
    """What ``evolution`` and ``guided`` need from the zero-shot layer (the engine may not
    import it): ``initial`` = the ``population // 2`` best-ranked of :data:`GUIDE_SAMPLES`
    random candidates (cost-capped, :func:`nas.zeroshot.query.rank_task` with the shipped
    T-AHC at the first horizon, seeded by the run's seed: deterministic, so a resumed run
    re-plans identically), and for ``guided`` also ``comparator`` = (model, the task's
    standardised features); ``{}`` for the other strategies.

    Raises:
        ValueError: no shipped comparator.
    """
    if config["strategy"] not in ("evolution", "guided"):
        return {}
    from .comparators import load_trained, standardise
    from .query import QUERY_DEFAULTS, cached_task_features, rank_task

    model, meta = load_trained()
    horizon = config["horizons"][0]
    ranked = rank_task(task, horizon, {**QUERY_DEFAULTS, "samples": GUIDE_SAMPLES,
                                       "top": config["population"] // 2,
                                       "seed": config["seed"]}, (model, meta))
    out = {"initial": [t["spec"] for t in ranked["top"]]}
    if config["strategy"] == "guided":
        feature = cached_task_features(task, horizon)  # computed once, by rank_task above
        out["comparator"] = (model, standardise(feature, meta["norm"]))
    return out
