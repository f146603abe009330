"""TPE (tree-structured Parzen estimator; Bergstra et al., NeurIPS 2011) through Optuna's
ask/tell API, with a define-by-run mirror of the declared space.

Every field of :data:`search_spaces.SPACE` becomes Optuna suggestions, read from the
declaration (nothing is listed twice): a :class:`~search_spaces.space.Choice` is one
categorical over its grid; a :class:`~search_spaces.space.Subset` one categorical over the
non-empty item masks; a :class:`~search_spaces.space.View` one ``use`` flag per augmentation,
its strength when used, and, for k >= 2 ordered augmentations used, the index of their order
among the k! permutations; the :class:`~search_spaces.space.Edges` cell, after its ``steps``,
each edge's op and, for the free edges of the AutoCTS++ wiring
(:func:`~search_spaces.space.edge_sources`), its source. So every valid spec has parameters
(:func:`spec_params`) and every suggestion is a valid spec (:func:`build_spec` validates it).
"""
from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import optuna

import search_spaces as ss
from search_spaces import space as _space
from search_spaces.space import Choice, Edges, Subset, View, edge_sources

from .base import SequentialStrategy, check_int, fitness

MAX_REDRAWS = 100  # suggestions tried before a repeated spec is replaced by a random one


def _perms(k: int) -> list:
    return list(itertools.permutations(range(k)))


def _suggest_view(trial, key: str, view: View) -> list:
    used = {}
    for aug in view.augs:
        if trial.suggest_categorical(f"{key}.{aug.name}.use", (False, True)):
            used[aug.name] = trial.suggest_categorical(f"{key}.{aug.name}.strength",
                                                       aug.strengths)
    ordered = [a.name for a in view.augs if a.place == "ordered" and a.name in used]
    if len(ordered) >= 2:
        order = trial.suggest_categorical(f"{key}.order{len(ordered)}",
                                          tuple(range(math.factorial(len(ordered)))))
        ordered = [ordered[i] for i in _perms(len(ordered))[order]]
    rest = [a.name for a in view.augs if a.place != "ordered" and a.name in used]
    return [{"name": n, "strength": used[n]} for n in ordered + rest]


def _suggest_cell(trial, key: str, cell: dict, spatial: bool) -> dict:
    out = {}
    for name, f in cell.items():
        path = f"{key}.{name}"
        if isinstance(f, Choice):
            out[name] = trial.suggest_categorical(path, f.grid)
        elif isinstance(f, Subset):
            mask = trial.suggest_categorical(path, tuple(range(1, 1 << len(f.grid))))
            out[name] = [c for i, c in enumerate(f.grid) if mask >> i & 1]
        elif isinstance(f, Edges):
            ops = _space.SPACE.op_names(spatial)
            edges = []
            for k in range(2 * out[f.steps] - 1):
                _, allowed, free = edge_sources(k)
                src = (trial.suggest_categorical(f"{path}.{k}.source", tuple(allowed)) if free
                       else allowed[0])
                edges.append([src, trial.suggest_categorical(f"{path}.{k}.op", ops)])
            out[name] = edges
    return out


def build_spec(trial, spatial: bool = True) -> dict:
    """The spec an Optuna trial (or :class:`optuna.trial.FixedTrial`) suggests, validated.

    Raises:
        ValueError: never for suggestions of this mirror (the spec is valid by construction).
    """
    space = _space.SPACE
    spec = {"version": space.version}
    for key, cell in space.cells.items():
        spec[key] = (_suggest_view(trial, key, cell) if isinstance(cell, View)
                     else _suggest_cell(trial, key, cell, spatial))
    return ss.validate(spec)


def _view_params(key: str, view: View, entries: list) -> dict:
    out = {f"{key}.{a.name}.use": False for a in view.augs}
    for e in entries:
        out[f"{key}.{e['name']}.use"] = True
        out[f"{key}.{e['name']}.strength"] = e["strength"]
    given = [e["name"] for e in entries if view.by_name[e["name"]].place == "ordered"]
    if len(given) >= 2:
        table = [a.name for a in view.augs if a.name in given]  # table order
        perm = tuple(table.index(n) for n in given)
        out[f"{key}.order{len(given)}"] = _perms(len(given)).index(perm)
    return out


def spec_params(spec: dict) -> dict:
    """The mirror's parameters of a valid spec (``build_spec`` of them gives it back).

    Raises:
        ValueError: the spec is invalid.
    """
    spec, out = ss.canonical(spec), {}
    for key, cell in _space.SPACE.cells.items():
        if isinstance(cell, View):
            out.update(_view_params(key, cell, spec[key]))
            continue
        for name, f in cell.items():
            value = spec[key][name]
            if isinstance(f, Choice):
                out[f"{key}.{name}"] = value
            elif isinstance(f, Subset):
                out[f"{key}.{name}"] = sum(1 << f.grid.index(c) for c in value)
            elif isinstance(f, Edges):
                for k, (src, op) in enumerate(value):
                    if edge_sources(k)[2]:
                        out[f"{key}.{name}.{k}.source"] = src
                    out[f"{key}.{name}.{k}.op"] = op
    return out


class TPEStrategy(SequentialStrategy):
    """TPE over the space (``optuna.samplers.TPESampler(seed=seed, constant_liar=True)``: the
    trials still running count as a pessimistic guess, so asynchronous asks spread out).

    The ts2vec preset and the ``initial`` specs are enqueued first. A suggestion repeating a
    spec already asked is told that spec's result (or FAIL while it runs) and redrawn; after
    :data:`MAX_REDRAWS` repeats a random sample is enqueued instead. Failed, diverged and
    timed-out trials are told the value +inf: the worst, so TPE learns to avoid them (TPE
    uses only the rank of values; a FAIL state would hide them from it).

    Raises:
        ValueError: trials not an int >= 1, or an invalid initial spec (``initial: spec <i>``).
    """

    def __init__(self, trials: int, seed: int = 0, spatial: bool = True, initial: list = ()):
        check_int("trials", trials)
        self.trials, self.spatial, self.asked = trials, spatial, 0
        self.rng = np.random.default_rng(seed)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
        self.study = optuna.create_study(direction="minimize", sampler=sampler)
        self.running: dict = {}  # spec hash -> its Optuna trial, until told
        self.values: dict = {}  # spec hash -> its fitness
        self.seen: set = set()
        for i, spec in enumerate([ss.preset("ts2vec"), *initial]):
            try:
                params = spec_params(spec)
            except ValueError as exc:
                raise ValueError(f"initial: spec {i}: {exc}") from None
            self.study.enqueue_trial(params)

    def _ask_one(self) -> tuple:
        for _ in range(MAX_REDRAWS):
            trial = self.study.ask()
            spec = build_spec(trial, self.spatial)
            h = ss.spec_hash(spec)
            if h not in self.seen:
                self.seen.add(h)
                self.running[h] = trial
                return h, spec
            self._tell_repeat(trial, h)
        self.study.enqueue_trial(spec_params(ss.sample(self.rng, spatial=self.spatial)))
        return self._ask_one()

    def _tell_repeat(self, trial, spec_hash: str) -> None:
        if spec_hash in self.values:
            self.study.tell(trial, self.values[spec_hash])
        else:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)

    def tell(self, spec: dict, row: dict) -> None:
        h = row["spec_hash"]
        self.values[h] = fitness(row)
        trial = self.running.pop(h, None)
        if trial is not None:
            self.study.tell(trial, self.values[h])
