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

Every node has a ``kind`` from :data:`NODE_KINDS` and ``N_PARAMS`` numeric ``params`` in [0, 1]
(zero-padded); its feature row is the kind one-hot followed by the params (:data:`NUM_FEATURES`
columns). Kinds and params derive from :data:`search_spaces.space.SPACE`, each scalar field
encoded as its ``Choice.node`` says: ``aug`` = strength, view index, position / (number of
augmentations - 1); ``embed`` / ``pair`` / ``loss`` = the fields of EmbedCell / PairCell /
LossCell; ``op`` = the Encoder fields with ``steps`` replaced by the state the op feeds;
``hyper`` = the Train then the Encoder fields. :func:`spec_to_adjacency` gives the same graph as
an attributed adjacency matrix.
"""
from __future__ import annotations

import math
import struct

import networkx as nx
import numpy as np
import torch
from torch_geometric.data import Data

from search_spaces import canonical
from search_spaces import space as _space
from search_spaces.space import Choice, Subset


def _node_kinds(space) -> tuple:
    cells = space.cells
    pair = next(f for f in cells["PairCell"].values() if isinstance(f, Subset))
    loss = next(f for f in cells["LossCell"].values() if isinstance(f, Choice) and f.node == "kind")
    return (("input",) + tuple(f"aug:{a}" for a in space.augs) + ("embed",)
            + tuple(f"op:{o}" for o in space.ops) + tuple(f"pair:{c}" for c in pair.grid)
            + tuple(f"loss:{x}" for x in loss.grid) + ("output", "hyper"))


def _width(fields: dict) -> int:
    """Number of params a cell's scalar fields give a node (see :func:`encode`)."""
    return sum(len(f.grid) if f.node == "onehot" else int(f.node != "kind")
               for f in fields.values() if isinstance(f, Choice))


def _n_params(space) -> int:
    cells = space.cells
    widths = {"aug": 3, "embed": _width(cells["EmbedCell"]), "op": _width(cells["Encoder"]),
              "pair": _width(cells["PairCell"]), "loss": _width(cells["LossCell"]),
              "hyper": _width(cells["Train"]) + _width(cells["Encoder"])}
    return max(widths.values())


#: Fixed node-kind vocabulary (the one-hot part of a node's features), from the declared space.
NODE_KINDS = _node_kinds(_space.SPACE)
KIND_INDEX = {kind: i for i, kind in enumerate(NODE_KINDS)}
#: Length of every node's ``params`` list (the widest node, ``hyper``, uses all of them).
N_PARAMS = _n_params(_space.SPACE)
#: F, the number of columns of :func:`node_features` / ``spec_to_data(spec).x``.
NUM_FEATURES = len(NODE_KINDS) + N_PARAMS


def _onehot(value, grid) -> list:
    return [1.0 if value == g else 0.0 for g in grid]


def _lognorm(value: float, grid) -> float:
    """log-scale position of ``value`` between the grid's min (0) and max (1)."""
    lo, hi = math.log(min(grid)), math.log(max(grid))
    return (math.log(value) - lo) / (hi - lo)


def encode(value, grid, how: str) -> list:
    """One field's node params: ``how`` in ``search_spaces.space.NODE_ENCODINGS``."""
    if how == "onehot":
        return _onehot(value, grid)
    if how == "max":
        return [value / max(grid)]
    if how == "log":
        return [_lognorm(value, grid)]
    return []  # "kind": the value is the node's kind


def _cell_params(cell: dict, fields: dict) -> list:
    """The params of a cell's scalar fields, in key order, each as its ``Choice.node`` says."""
    out = []
    for name, f in fields.items():
        if isinstance(f, Choice):
            out += encode(cell[name], f.grid, f.node)
    return out


def _producers(state: int) -> list:
    """Indices of the cell pairs (op nodes) whose sum is state ``state`` >= 1 (the edges
    feeding that node under :func:`search_spaces.space.edge_sources`)."""
    return [k for k in range(2 * state - 1) if _space.edge_sources(k)[0] == state]


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
    """Chain each view's augmentations after ``inp``; returns the last node of each view.
    Params: strength (``View.strength_node``), view index, position / (number of augs - 1)."""
    view, lasts = _space.SPACE.view, []
    for i, key in enumerate(("AugCell1", "AugCell2")):
        last = inp
        for pos, aug in enumerate(spec[key]):
            grid = view.by_name[aug["name"]].strengths
            params = (encode(aug["strength"], grid, view.strength_node)
                      + [float(i), pos / (len(view.augs) - 1)])
            last = b.node(f"aug:{aug['name']}", params, [last])
        lasts.append(last)
    return lasts


def _add_encoder(b: _Builder, enc: dict, embed: int) -> list:
    """One op node per cell pair (AutoCTS++); returns the op nodes summed into the cell output.
    Params: the Encoder fields with ``steps`` replaced by the state the op feeds."""
    fields = _space.SPACE.cells["Encoder"]
    steps = fields[_space.SPACE.edges_at[1]].steps  # the name of the steps field
    op_nodes = []
    for k, (source, op) in enumerate(enc["cell"]):
        inputs = [embed] if source == 0 else [op_nodes[p] for p in _producers(source)]
        state = _space.edge_sources(k)[0]  # the state this op contributes to
        op_nodes.append(b.node(f"op:{op}", _cell_params({**enc, steps: state}, fields), inputs))
    return [op_nodes[p] for p in _producers(enc["steps"])]


def _add_head(b: _Builder, spec: dict, outputs: list) -> int:
    """Pair-construction nodes and the loss node; returns the loss node."""
    cells = _space.SPACE.cells
    pair, loss = spec["PairCell"], spec["LossCell"]
    pair_params = _cell_params(pair, cells["PairCell"])
    pairs = [b.node(f"pair:{c}", pair_params, outputs) for c in pair["contrasts"]]
    return b.node(f"loss:{loss['loss']}", _cell_params(loss, cells["LossCell"]), pairs)


def _build(spec: dict) -> _Builder:
    """Nodes and edges of the canonical spec (the single source of both graph views).

    Raises:
        ValueError: the spec is invalid.
    """
    spec = canonical(spec)
    cells = _space.SPACE.cells
    b = _Builder()
    inp = b.node("input")
    lasts = _add_views(b, spec, inp)
    embed = b.node("embed", _cell_params(spec["EmbedCell"], cells["EmbedCell"]),
                   list(dict.fromkeys(lasts)))
    outputs = _add_encoder(b, spec["Encoder"], embed)
    loss = _add_head(b, spec, outputs)
    hyper = b.node("hyper", _cell_params(spec["Train"], cells["Train"])
                   + _cell_params(spec["Encoder"], cells["Encoder"]), [inp])
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


def spec_to_adjacency(spec: dict) -> tuple:
    """The spec as an attributed adjacency matrix, as AutoCTS++'s ``geno_to_adj`` (Wu et al.,
    VLDB Journal 2024): ``(A, X)`` with A (N, N) uint8, ``A[i, j] = 1`` for an edge i -> j, and
    X (N, F) float32 node features (:func:`node_features`); nodes in :func:`spec_to_graph` order.

    Raises:
        ValueError: the spec is invalid.
    """
    b = _build(spec)
    adj = np.zeros((len(b.kinds), len(b.kinds)), dtype=np.uint8)
    src, dst = zip(*b.edges)  # a valid spec's graph always has edges (input -> hyper -> output)
    adj[list(src), list(dst)] = 1
    return adj, _features(b.kinds, b.params)


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
