"""T-AHC: the task-aware architecture-hyperparameter comparator of AutoCTS++ (Wu et al., VLDB
Journal 2024, Sec. 5).

A GNN embeds the spec graph (:mod:`comparator.graph`, operations as nodes, hyper-parameters as
a node), an MLP embeds the task features, and a head scores the pair; the comparator is
``P(a better than b | task) = sigmoid(score(a, task) - score(b, task))``, antisymmetric by
construction. "Better" means the lower validation MSE.
"""
from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.nn import GINConv, global_add_pool, global_mean_pool

from .graph import NUM_FEATURES, spec_to_data

TRAIN_BATCH_PAIRS = 256  # pairs per optimiser step in train_tahc


@contextmanager
def _torch_threads(n):
    """Run with ``n`` torch intra-op threads (None: unchanged), restoring the count after.

    The comparator's small scatter/linear ops gain nothing from more threads and slow down
    ~20x when a second thread competes with another busy process for the core (measured on
    2 cores: 20,000 graphs scored in 1.5 s with 1 thread, 25 s with 2).
    """
    before = torch.get_num_threads()
    if n is not None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"num_threads: got {n!r}; allowed: None or an int >= 1")
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


class TAHC(nn.Module):
    """Task-aware comparator: bidirectional GIN over the spec graph + task MLP + score head.

    Args:
        n_node_features: F, node feature width (:data:`comparator.NUM_FEATURES`).
        n_task_features: T_f, task feature width (may be 0 when ``use_task`` is False).
        hidden: width of every hidden layer.
        layers: message-passing rounds; each round sums a GINConv along the edges and one
            against them (the spec graph is a DAG), with a residual connection.
        use_task: condition the score on the task embedding (the "T" of T-AHC).

    Raises:
        ValueError: a width or layer count below 1, or ``use_task`` with ``n_task_features`` 0.
    """

    def __init__(self, n_node_features: int, n_task_features: int, hidden: int = 64,
                 layers: int = 3, use_task: bool = True):
        super().__init__()
        if min(n_node_features, hidden, layers) < 1 or n_task_features < 0:
            raise ValueError(f"TAHC: got n_node_features={n_node_features}, hidden={hidden}, "
                             f"layers={layers}, n_task_features={n_task_features}; allowed: "
                             "positive widths and layers, n_task_features >= 0")
        if use_task and n_task_features < 1:
            raise ValueError("TAHC: got use_task=True with n_task_features=0; allowed: >= 1")
        self.config = {"n_node_features": int(n_node_features),
                       "n_task_features": int(n_task_features), "hidden": int(hidden),
                       "layers": int(layers), "use_task": bool(use_task)}
        self.use_task = bool(use_task)
        self.node_in = nn.Linear(n_node_features, hidden)
        self.forward_convs = nn.ModuleList(
            GINConv(_mlp(hidden, hidden, hidden)) for _ in range(layers))
        self.backward_convs = nn.ModuleList(
            GINConv(_mlp(hidden, hidden, hidden)) for _ in range(layers))
        self.graph_out = nn.Linear(2 * hidden, hidden)
        self.task_mlp = _mlp(n_task_features, hidden, hidden) if use_task else None
        self.head = _mlp(hidden * (3 if use_task else 1), hidden, 1)

    def embed_graphs(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor,
                     n_graphs: int) -> torch.Tensor:
        """Graph embeddings (B, hidden) of a disjoint batch: x (N, F), edge_index (2, E),
        batch (N,) graph ids in [0, B)."""
        h = torch.relu(self.node_in(x))
        reverse = edge_index.flip(0)
        for fwd, bwd in zip(self.forward_convs, self.backward_convs):
            h = h + torch.relu(fwd(h, edge_index) + bwd(h, reverse))
        pooled = torch.cat([global_add_pool(h, batch, n_graphs),
                            global_mean_pool(h, batch, n_graphs)], dim=1)
        return torch.relu(self.graph_out(pooled))

    def _score(self, x, edge_index, batch, n_graphs: int, task) -> torch.Tensor:
        emb = self.embed_graphs(x, edge_index, batch, n_graphs)
        if self.use_task:
            if task is None:
                raise ValueError("TAHC: got task=None; allowed: a (B, T_f) or (T_f,) tensor "
                                 "when use_task is True")
            task = torch.as_tensor(task, dtype=torch.float32)
            task = task.reshape(1, -1).expand(n_graphs, -1) if task.dim() == 1 else task
            task_emb = self.task_mlp(task)
            emb = torch.cat([emb, task_emb, emb * task_emb], dim=1)
        return self.head(emb).squeeze(1)

    def score(self, graph_batch, task=None) -> torch.Tensor:
        """Scores (B,) of a ``torch_geometric`` Batch of spec graphs (higher = better); ``task``
        is (B, T_f) or (T_f,) (broadcast), ignored when ``use_task`` is False.

        Raises:
            ValueError: ``use_task`` and no task given.
        """
        return self._side(graph_batch.x, graph_batch.edge_index,
                          getattr(graph_batch, "batch", None), task)

    def _side(self, x, edge_index, batch, task) -> torch.Tensor:
        if batch is None:  # a single graph
            batch = torch.zeros(x.size(0), dtype=torch.long)
        n_graphs = int(batch.max()) + 1 if batch.numel() else 0
        return self._score(x, edge_index, batch, n_graphs, task)

    def forward(self, pair_batch) -> torch.Tensor:
        """P(a better than b | task), shape (B,), for a batch of :class:`PairData` made with
        ``follow_batch=["x_a", "x_b"]`` (a single unbatched PairData gives B = 1).
        Equals ``sigmoid(score_a - score_b)``, so P(a, b) = 1 - P(b, a).

        Raises:
            ValueError: ``use_task`` and the pairs carry no ``task``.
        """
        p, task = pair_batch, getattr(pair_batch, "task", None)
        score_a = self._side(p.x_a, p.edge_index_a, getattr(p, "x_a_batch", None), task)
        score_b = self._side(p.x_b, p.edge_index_b, getattr(p, "x_b_batch", None), task)
        return torch.sigmoid(score_a - score_b)


class TAHCEnsemble(nn.Module):
    """The mean score of M :class:`TAHC` members of one configuration trained from different
    seeds (a deep ensemble, Lakshminarayanan et al., NeurIPS 2017), meant to damp the winner's
    curse of taking the top of tens of thousands of candidates by one model's score (measured
    in the README on the first 1,234 seed records: +0.017 leave-one-dataset-out tau over its
    members' mean).
    ``P(a better than b) = sigmoid(mean_m s_m(a) - mean_m s_m(b))`` stays antisymmetric; the
    interface is that of :class:`TAHC`.

    Raises:
        ValueError: no members, or members of different configurations.
    """

    score = TAHC.score
    _side = TAHC._side
    forward = TAHC.forward

    def __init__(self, members: list):
        super().__init__()
        if not members or any(m.config != members[0].config for m in members):
            raise ValueError("TAHCEnsemble: got no members or members of different "
                             "configurations; allowed: >= 1 TAHC of one configuration")
        self.members = nn.ModuleList(members)
        self.use_task = members[0].use_task
        self.config = {**members[0].config, "n_members": len(members)}

    def _score(self, x, edge_index, batch, n_graphs: int, task) -> torch.Tensor:
        return torch.stack([m._score(x, edge_index, batch, n_graphs, task)
                            for m in self.members]).mean(0)


def _group_by_task(records: list, task_features) -> dict:
    """task_id -> indices of the records with a finite val_mse (insertion order)."""
    groups = defaultdict(list)
    for i, rec in enumerate(records):
        if task_features is not None and rec["task_id"] not in task_features:
            raise ValueError(f"records[{i}].task_id: got {rec['task_id']!r}; allowed: a key of "
                             "task_features")
        if np.isfinite(rec["val_mse"]):
            groups[rec["task_id"]].append(i)
    return groups


def _sample_pairs(rng: np.random.Generator, groups: dict, mse: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` random (i, j) pairs per task with mse[i] != mse[j], as a (P, 2) array."""
    out = []
    for idx in groups.values():
        idx = np.asarray(idx)
        if np.unique(mse[idx]).size < 2:
            continue
        got = np.empty((0, 2), dtype=np.int64)
        while len(got) < n:
            cand = idx[rng.integers(len(idx), size=(2 * n, 2))]
            got = np.concatenate([got, cand[mse[cand[:, 0]] != mse[cand[:, 1]]]])
        out.append(got[:n])
    return np.concatenate(out) if out else np.empty((0, 2), dtype=np.int64)


def _task_matrix(records: list, task_features, use_task: bool) -> torch.Tensor:
    if not use_task:
        return torch.zeros(len(records), 0)
    rows = [np.asarray(task_features[r["task_id"]], dtype=np.float32).reshape(-1) for r in records]
    if len({len(r) for r in rows}) != 1:
        raise ValueError("task_features: got vectors of different lengths; allowed: one length")
    return torch.from_numpy(np.stack(rows))


def _train_step(model, opt, graphs, tasks, mse, pairs) -> tuple:
    """One Adam step of BCE on a minibatch of (i, j) pairs; returns (loss, n correct)."""
    uniq, inv = np.unique(pairs, return_inverse=True)
    inv = torch.from_numpy(inv.reshape(pairs.shape))
    g = Batch.from_data_list([graphs[i] for i in uniq])
    s = model._score(g.x, g.edge_index, g.batch, g.num_graphs,
                     tasks[uniq] if model.use_task else None)
    logit = s[inv[:, 0]] - s[inv[:, 1]]
    y = torch.from_numpy((mse[pairs[:, 0]] < mse[pairs[:, 1]]).astype(np.float32))
    loss = nn.functional.binary_cross_entropy_with_logits(logit, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item() * len(pairs), int(((logit > 0).float() == y).sum())


def _run_epoch(model, opt, rng, graphs, tasks, mse, groups, pairs_per_task) -> tuple:
    """One pass over fresh within-task pairs; returns (mean BCE, pairwise accuracy)."""
    pairs = _sample_pairs(rng, groups, mse, pairs_per_task)
    if not len(pairs):
        raise ValueError("records: no task has two records with different finite val_mse")
    pairs = pairs[rng.permutation(len(pairs))]
    model.train()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(pairs), TRAIN_BATCH_PAIRS):
        batch = pairs[start:start + TRAIN_BATCH_PAIRS]
        loss, ok = _train_step(model, opt, graphs, tasks, mse, batch)
        loss_sum, correct = loss_sum + loss, correct + ok
    return loss_sum / len(pairs), correct / len(pairs)


def train_tahc(records: list, task_features: dict | None, epochs: int = 30,
               pairs_per_task: int = 256, seed: int = 0, use_task: bool = True,
               lr: float = 1e-3, hidden: int = 64, layers: int = 3,
               num_threads: int | None = 1, members: int = 1) -> tuple:
    """Train a :class:`TAHC` (BCE, Adam) on pairs drawn within each task (AutoCTS++ T-AHC).

    Args:
        records: dicts ``{"task_id": str, "spec": dict, "val_mse": float}``; records with a
            non-finite val_mse are skipped.
        task_features: task_id -> 1-D float array (standardised by the caller); may be None
            when ``use_task`` is False.
        epochs: passes; each draws ``pairs_per_task`` fresh random pairs of records of the same
            task with different val_mse (label 1 when a has the lower val_mse), in minibatches
            of :data:`TRAIN_BATCH_PAIRS` pairs.
        seed: seeds the weights and the pair sampling (runs are deterministic on CPU).
        num_threads: torch threads during training (restored after; None: unchanged).
        members: M > 1 trains M models with seeds ``seed``, ``seed + 1``, ... and returns their
            :class:`TAHCEnsemble` (M times the training time).

    Returns:
        (model in eval mode, history): history holds one dict per epoch (and member) with
        ``member``, ``epoch``, ``loss`` (mean BCE) and ``acc`` (pairwise training accuracy).

    Raises:
        ValueError: no records, a record's task has no features, task vectors differ in length, no task
            has two records with different val_mse, or a spec is invalid.
    """
    if not records:
        raise ValueError("records: got an empty list; allowed: records of at least one task")
    if isinstance(members, bool) or not isinstance(members, int) or members < 1:
        raise ValueError(f"members: got {members!r}; allowed: an int >= 1")
    if use_task and not task_features:
        raise ValueError("task_features: got none; allowed: a dict task_id -> vector when "
                         "use_task is True")
    groups = _group_by_task(records, task_features)
    mse = np.array([float(r["val_mse"]) for r in records])
    tasks = _task_matrix(records, task_features, use_task)
    graphs = [spec_to_data(r["spec"]) for r in records]  # each spec encoded once, by index
    models, history = [], []
    with _torch_threads(num_threads):
        for member in range(members):
            rng = np.random.default_rng(seed + member)
            torch.manual_seed(seed + member)
            model = TAHC(NUM_FEATURES, tasks.size(1), hidden, layers, use_task)
            opt = torch.optim.Adam(model.parameters(), lr=lr)
            for epoch in range(epochs):
                loss, acc = _run_epoch(model, opt, rng, graphs, tasks, mse, groups,
                                       pairs_per_task)
                history.append({"member": member, "epoch": epoch, "loss": loss, "acc": acc})
            models.append(model.eval())
    return (models[0] if members == 1 else TAHCEnsemble(models).eval()), history


def _task_vector(model: TAHC, task_feature):
    if not model.use_task:
        return None
    want = model.config["n_task_features"]
    if task_feature is None or np.asarray(task_feature).size != want:
        got = None if task_feature is None else np.shape(task_feature)
        raise ValueError(f"task_feature: got shape {got}; allowed: {want} floats")
    return torch.as_tensor(np.asarray(task_feature, dtype=np.float32).reshape(-1))


def rank(model, specs: list, task_feature=None, batch_size: int = 1024,
         num_threads: int | None = 1) -> np.ndarray:
    """Scores (N,) float32 of ``specs`` for one task (higher = predicted better): one graph
    encoding per spec, ``batch_size`` graphs per forward pass, eval mode, no grad, with
    ``num_threads`` torch threads (restored after; None: unchanged). 20,000 specs take about
    5 s on one core, two thirds of it in :func:`spec_to_data`.

    Raises:
        ValueError: ``model.use_task`` and ``task_feature`` is None or of the wrong length;
            batch_size < 1; a spec is invalid.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: got {batch_size!r}; allowed: an int >= 1")
    task = _task_vector(model, task_feature)
    model.eval()
    out = []
    with _torch_threads(num_threads), torch.no_grad():
        for start in range(0, len(specs), batch_size):
            g = Batch.from_data_list([spec_to_data(s) for s in specs[start:start + batch_size]])
            out.append(model._score(g.x, g.edge_index, g.batch, g.num_graphs, task).numpy())
    return np.concatenate(out) if out else np.empty(0, dtype=np.float32)


def save(model, path) -> None:
    """Write ``{"config": dict, "state_dict": ...}`` to ``path`` (readable with
    ``torch.load(path, weights_only=True)``)."""
    torch.save({"config": dict(model.config), "state_dict": model.state_dict()}, path)


def load(path):
    """Rebuild a :class:`TAHC` or :class:`TAHCEnsemble` written by :func:`save` (eval mode).

    Raises:
        FileNotFoundError: no such file. KeyError / RuntimeError: not a saved TAHC.
    """
    obj = torch.load(path, weights_only=True)
    config = dict(obj["config"])
    n_members = config.pop("n_members", 1)
    model = (TAHCEnsemble([TAHC(**config) for _ in range(n_members)]) if n_members > 1
             else TAHC(**config))
    model.load_state_dict(obj["state_dict"])
    return model.eval()
