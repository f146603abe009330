"""A spec as a graph with operations as nodes (AutoCTS++, Wu et al., VLDB Journal 2024, Sec. 5).

The graph of a spec is built from its canonical form (:func:`search_spaces.canonical`), so
semantically equal specs give identical graphs. Nodes, in this fixed order:

* ``input``;
* one ``aug:<name>`` node per augmentation of AugCell1, then of AugCell2, each view chained
  ``input -> aug_1 -> aug_2 -> ...`` in its (canonical) order;
* ``embed`` (EmbedCell), fed by the last augmentation of each view (``input`` if a view is empty);
* one ``op:<name>`` node per ``[source, op]`` pair of the encoder cell, fed by every op node that
  produces state ``source`` (state 0 = ``embed``); the cell output is the sum of the op nodes of
  the last state (AutoCTS++: operations as nodes, the sums implicit in the edges);
* one ``pair:<contrast>`` node per enabled contrast, fed by the cell-output op nodes;
* ``loss:<loss>`` fed by the pair nodes, then ``output`` fed by the loss;
* ``hyper`` (training hyper-parameters and encoder sizes): ``input -> hyper -> output``, so it is
  reachable from the input and every node reaches the output.

Every node has a ``kind`` from :data:`NODE_KINDS` and ``N_PARAMS`` numeric ``params`` in [0, 1];
its feature row is the kind one-hot followed by the params (:data:`NUM_FEATURES` columns).
"""
from __future__ import annotations

import math
import struct

import networkx as nx
import numpy as np
import torch
from torch_geometric.data import Data

from search_spaces import canonical
from search_spaces import spec as S

#: Fixed node-kind vocabulary (the one-hot part of a node's features).
NODE_KINDS = (("input",) + tuple(f"aug:{a}" for a in S.AUGMENTATIONS) + ("embed",)
              + tuple(f"op:{o}" for o in S.ENCODER_OPS)
              + tuple(f"pair:{c}" for c in S.CONTRASTS)
              + tuple(f"loss:{x}" for x in S.LOSSES) + ("output", "hyper"))
KIND_INDEX = {kind: i for i, kind in enumerate(NODE_KINDS)}
#: Length of every node's ``params`` list (the widest node, ``hyper``, uses all of them).
N_PARAMS = 7
#: F, the number of columns of :func:`node_features` / ``spec_to_data(spec).x``.
NUM_FEATURES = len(NODE_KINDS) + N_PARAMS


def _onehot(value, grid) -> list:
    return [1.0 if value == g else 0.0 for g in grid]


def _lognorm(value: float, grid) -> float:
    """log-scale position of ``value`` between the grid's min (0) and max (1)."""
    lo, hi = math.log(min(grid)), math.log(max(grid))
    return (math.log(value) - lo) / (hi - lo)


def _producers(state: int) -> list:
    """Indices of the cell pairs (op nodes) whose sum is state ``state`` >= 1."""
    return [0] if state == 1 else [2 * state - 3, 2 * state - 2]


def _encoder_sizes(enc: dict) -> list:
    return [enc["layers"] / max(S.ENCODER_LAYERS), enc["hidden"] / max(S.HIDDEN_WIDTHS),
            enc["repr_dim"] / max(S.REPR_DIMS)]


class _Builder:
    """Accumulates nodes (kind, params) and directed edges in insertion order."""

    def __init__(self):
        self.kinds, self.params, self.edges = [], [], []

    def node(self, kind: str, params=(), sources=()) -> int:
        idx = len(self.kinds)
        self.kinds.append(kind)
        self.params.append(list(params) + [0.0] * (N_PARAMS - len(params)))
        self.edges.extend((src, idx) for src in sources)
        return idx


def _add_views(b: _Builder, spec: dict, inp: int) -> list:
    """Chain each view's augmentations after ``inp``; returns the last node of each view."""
    lasts = []
    for view, key in enumerate(("AugCell1", "AugCell2")):
        last = inp
        for pos, aug in enumerate(spec[key]):
            strength = aug["strength"] / max(S.AUG_STRENGTHS[aug["name"]])
            last = b.node(f"aug:{aug['name']}", [strength, float(view),
                                                 pos / (len(S.AUGMENTATIONS) - 1)], [last])
        lasts.append(last)
    return lasts


def _add_encoder(b: _Builder, enc: dict, embed: int) -> list:
    """One op node per cell pair (AutoCTS++); returns the op nodes summed into the cell output."""
    sizes = _encoder_sizes(enc)
    op_nodes = []
    for k, (source, op) in enumerate(enc["cell"]):
        inputs = [embed] if source == 0 else [op_nodes[p] for p in _producers(source)]
        target = (k + 1) // 2 + 1  # the state this op contributes to
        op_nodes.append(b.node(f"op:{op}", [target / max(S.ENCODER_STEPS)] + sizes, inputs))
    return [op_nodes[p] for p in _producers(enc["steps"])]


def _add_head(b: _Builder, spec: dict, outputs: list) -> int:
    """Pair-construction nodes and the loss node; returns the loss node."""
    pair = spec["PairCell"]
    pair_params = (_onehot(pair["pooling"], S.POOLINGS) + [pair["kernel"] / max(S.POOL_KERNELS)]
                   + _onehot(pair["level_weighting"], S.LEVEL_WEIGHTINGS))
    pairs = [b.node(f"pair:{c}", pair_params, outputs) for c in pair["contrasts"]]
    loss = spec["LossCell"]
    loss_params = (_onehot(loss["similarity"], S.SIMILARITIES)
                   + [_lognorm(loss["temperature"], S.TEMPERATURES)])
    return b.node(f"loss:{loss['loss']}", loss_params, pairs)


def _hyper_params(spec: dict) -> list:
    train, enc = spec["Train"], spec["Encoder"]
    return ([_lognorm(train["lr"], S.LEARNING_RATES),
             train["batch_size"] / max(S.BATCH_SIZES),
             train["max_train_length"] / max(S.MAX_TRAIN_LENGTHS),
             enc["steps"] / max(S.ENCODER_STEPS)] + _encoder_sizes(enc))


def _build(spec: dict) -> _Builder:
    """Nodes and edges of the canonical spec (the single source of both graph views).

    Raises:
        ValueError: the spec is invalid.
    """
    spec = canonical(spec)
    b = _Builder()
    inp = b.node("input")
    lasts = _add_views(b, spec, inp)
    emb = spec["EmbedCell"]
    embed = b.node("embed", [emb["jitter"] / max(S.EMBED_JITTER),
                             emb["masking"] / max(S.EMBED_MASKING)]
                   + _onehot(emb["norm"], S.EMBED_NORMS), list(dict.fromkeys(lasts)))
    outputs = _add_encoder(b, spec["Encoder"], embed)
    loss = _add_head(b, spec, outputs)
    hyper = b.node("hyper", _hyper_params(spec), [inp])
    b.node("output", (), [loss, hyper])
    return b


def spec_to_graph(spec: dict) -> nx.DiGraph:
    """The spec as a ``networkx.DiGraph`` on nodes 0..N-1 (see the module docstring).

    Node attributes: ``kind`` (str in :data:`NODE_KINDS`) and ``params`` (N_PARAMS floats in
    [0, 1]). Node and edge insertion order are deterministic.

    Raises:
        ValueError: the spec is invalid (see :func:`search_spaces.validate`).
    """
    b = _build(spec)
    g = nx.DiGraph()
    for i, (kind, params) in enumerate(zip(b.kinds, b.params)):
        g.add_node(i, kind=kind, params=params)
    g.add_edges_from(b.edges)
    return g


def _features(kinds: list, params: list) -> np.ndarray:
    x = np.zeros((len(kinds), NUM_FEATURES), dtype=np.float32)
    x[np.arange(len(kinds)), [KIND_INDEX[k] for k in kinds]] = 1.0
    x[:, len(NODE_KINDS):] = params
    return x


def node_features(g: nx.DiGraph) -> np.ndarray:
    """Feature matrix (N, F) float32 of a graph from :func:`spec_to_graph`, rows in node order:
    the kind one-hot over :data:`NODE_KINDS` then the params (F = :data:`NUM_FEATURES`).

    Raises:
        KeyError: a node lacks ``kind``/``params`` or its kind is not in :data:`NODE_KINDS`.
    """
    nodes = list(g.nodes)
    return _features([g.nodes[n]["kind"] for n in nodes], [g.nodes[n]["params"] for n in nodes])


def spec_to_data(spec: dict) -> Data:
    """The spec graph as ``torch_geometric.data.Data``: ``x`` float32 (N, F) and ``edge_index``
    long (2, E), equal to :func:`node_features` and the edges of :func:`spec_to_graph`
    (built without networkx, for speed).

    Raises:
        ValueError: the spec is invalid.
    """
    b = _build(spec)
    edge_index = torch.tensor(b.edges, dtype=torch.long).t().contiguous()
    return Data(x=torch.from_numpy(_features(b.kinds, b.params)), edge_index=edge_index)


def graph_key(data: Data) -> bytes:
    """Exact identity of a graph: (N, E) header, then the bytes of ``x`` and ``edge_index``."""
    x, ei = data.x.contiguous().numpy(), data.edge_index.contiguous().numpy()
    return struct.pack("<qq", x.shape[0], ei.shape[1]) + x.tobytes() + ei.tobytes()


class PairData(Data):
    """Two spec graphs (a, b) in one object, batched as pairs (PyG "Advanced Mini-Batching").

    Attributes: ``x_a`` (N_a, F), ``edge_index_a`` (2, E_a), ``x_b`` (N_b, F), ``edge_index_b``
    (2, E_b); optional ``task`` (1, T_f) and ``y`` (1,) (1.0 when a is better, i.e. has the lower
    validation MSE). Batch with ``torch_geometric.loader.DataLoader(pairs, batch_size,
    follow_batch=["x_a", "x_b"])`` to get ``x_a_batch`` / ``x_b_batch``; ``edge_index_a`` is
    offset by the ``x_a`` rows before it, ``edge_index_b`` by the ``x_b`` rows.
    """

    def __inc__(self, key, value, *args, **kwargs):
        if key == "edge_index_a":
            return self.x_a.size(0)
        if key == "edge_index_b":
            return self.x_b.size(0)
        return super().__inc__(key, value, *args, **kwargs)

    @classmethod
    def from_graphs(cls, a: Data, b: Data, task=None, y=None) -> PairData:
        """Pair two :func:`spec_to_data` graphs; ``task`` (T_f,) or (1, T_f), ``y`` a scalar."""
        out = cls(x_a=a.x, edge_index_a=a.edge_index, x_b=b.x, edge_index_b=b.edge_index)
        if task is not None:
            out.task = torch.as_tensor(task, dtype=torch.float32).reshape(1, -1)
        if y is not None:
            out.y = torch.as_tensor(y, dtype=torch.float32).reshape(1)
        return out
