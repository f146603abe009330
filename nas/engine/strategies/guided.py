"""Comparator-guided regularised evolution: the tournament winner's mutations pre-ranked by
T-AHC, the comparator fine-tuned on the task's own results as they arrive.

Each child is the best-ranked of ``k_mutations`` distinct unseen mutations of the tournament
winner, scored by the task-aware comparator of AutoCTS++ (Wu et al., VLDB Journal 2024; the
shipped weights, :func:`comparator.rank`); only that one is trained. Every
``finetune_every`` results the comparator (a copy; the given model is not changed) takes a few
Adam steps of the T-AHC pairwise loss (BCE on ``sigmoid(s(a) - s(b))``, label: a has the lower
validation MSE) on pairs of this task's completed trials: few-shot adaptation to the task, as
AutoCTS++ fine-tunes on the target task's few labelled architectures.
"""
from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import torch
from torch_geometric.data import Batch

import comparator as cp
import search_spaces as ss

from .evolution import MAX_REDRAWS, EvolutionStrategy

FINETUNE_STEPS = 20  # Adam steps per fine-tuning round
FINETUNE_PAIRS = 256  # at most this many result pairs per round (drawn from all)
FINETUNE_LR = 1e-4


class GuidedStrategy(EvolutionStrategy):
    """:class:`~nas.engine.strategies.evolution.EvolutionStrategy` whose children are chosen
    by a comparator.

    Args:
        comparator: ``(model, task_feature)``: a :class:`comparator.TAHC` (or ensemble) and the
            task's standardised feature vector (T_f,), as the zero-shot layer builds them.
        k_mutations: K, mutations of the winner ranked per child (1 = plain evolution).
        finetune_every: fine-tune after every this many results (0 = never).
        Others as :class:`~nas.engine.strategies.evolution.EvolutionStrategy`.

    Raises:
        ValueError: as EvolutionStrategy; k_mutations < 1 or finetune_every < 0; a comparator
            that is not a (model, feature) pair.
    """

    def __init__(self, trials: int, comparator: tuple, seed: int = 0, spatial: bool = True,
                 population: int = 16, sample_size: int = 4, initial: list = (),
                 k_mutations: int = 16, finetune_every: int = 8):
        super().__init__(trials, seed, spatial, population, sample_size, initial)
        for name, value, low in (("k_mutations", k_mutations, 1),
                                 ("finetune_every", finetune_every, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: got {value!r}; allowed: an int >= {low}")
        if not (isinstance(comparator, tuple) and len(comparator) == 2):
            raise ValueError(f"comparator: got {type(comparator).__name__}; allowed: a "
                             "(model, task_feature) pair")
        self.model = copy.deepcopy(comparator[0]).eval()
        self.feature = np.asarray(comparator[1], dtype=np.float32)
        self.k, self.finetune_every, self.seed = k_mutations, finetune_every, seed
        self.results: list = []  # (spec, fitness) of every result told, in order
        self.finetunes = 0

    def _keep_child(self, parent: dict, out: list) -> bool:
        """Keep the best-ranked of up to K unseen mutations of ``parent``."""
        pool, hashes = [], set()
        for _ in range(MAX_REDRAWS):
            if len(pool) == self.k:
                break
            spec = self.child(parent)
            h = ss.spec_hash(spec)
            if h not in self.seen and h not in hashes:
                hashes.add(h)
                pool.append(spec)
        if not pool:
            return False
        scores = cp.rank(self.model, pool, self.feature)
        return self._keep(pool[int(np.argmax(scores))], out)

    def tell(self, spec: dict, row: dict) -> None:
        super().tell(spec, row)
        self.results.append((spec, self.population[-1][1]))
        if self.finetune_every and len(self.results) % self.finetune_every == 0:
            self.finetune()

    def finetune(self) -> float | None:
        """A few Adam steps of the pairwise loss on this task's finite results; -> the last
        loss (None when fewer than two distinct results). Deterministic: pairs drawn with
        ``default_rng((seed, round))``, one torch thread."""
        done = [(s, f) for s, f in self.results if math.isfinite(f)]
        pairs = [(a, b) for a, b in itertools.combinations(range(len(done)), 2)
                 if done[a][1] != done[b][1]]
        if not pairs:
            return None
        rng = np.random.default_rng((self.seed, self.finetunes))
        self.finetunes += 1
        if len(pairs) > FINETUNE_PAIRS:
            pairs = [pairs[i] for i in rng.choice(len(pairs), FINETUNE_PAIRS, replace=False)]
        pairs = np.array(pairs)
        graphs = Batch.from_data_list([cp.spec_to_data(s) for s, _ in done])
        mse = np.array([f for _, f in done])
        label = torch.from_numpy((mse[pairs[:, 0]] < mse[pairs[:, 1]]).astype(np.float32))
        return _train_pairs(self.model, graphs, self.feature, pairs, label)


def _train_pairs(model, graphs, feature, pairs: np.ndarray, label) -> float:
    """FINETUNE_STEPS Adam steps of BCE on ``score(a) - score(b)``; the model ends in eval."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        opt = torch.optim.Adam(model.parameters(), lr=FINETUNE_LR)
        task = torch.from_numpy(feature)
        model.train()
        for _ in range(FINETUNE_STEPS):
            score = model.score(graphs, task)
            logit = score[pairs[:, 0]] - score[pairs[:, 1]]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, label)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        return loss.item()
    finally:
        torch.set_num_threads(before)
