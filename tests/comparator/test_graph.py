"""Spec graphs (AutoCTS++ operations-as-nodes): injectivity, canonical invariance, structure,
and PairData batching."""
from __future__ import annotations

import copy
from collections import Counter

import networkx as nx
import numpy as np
import pytest
import torch
from torch_geometric.loader import DataLoader

import search_spaces as ss
from comparator import (
    NUM_FEATURES,
    PairData,
    node_features,
    spec_to_adjacency,
    spec_to_data,
    spec_to_graph,
)
from comparator.graph import NODE_KINDS, graph_key


def _shuffled_variant(spec: dict, rng: np.random.Generator) -> dict:
    """A semantically equal spelling: crop / timestamp_masking moved to random positions of each
    view (ordered augmentations keep their relative order) and the contrasts permuted."""
    out = copy.deepcopy(spec)
    for key in ("AugCell1", "AugCell2"):
        ordered = [a for a in out[key] if a["name"] not in ss.spec.UNORDERED_AUGMENTATIONS]
        for aug in (a for a in out[key] if a["name"] in ss.spec.UNORDERED_AUGMENTATIONS):
            ordered.insert(int(rng.integers(len(ordered) + 1)), aug)
        out[key] = ordered
    contrasts = out["PairCell"]["contrasts"]
    out["PairCell"]["contrasts"] = [contrasts[i] for i in rng.permutation(len(contrasts))]
    return out


def _kinds(g: nx.DiGraph) -> list:
    return [g.nodes[n]["kind"] for n in g.nodes]


def test_10k_random_specs_hash_and_graph_key_are_in_bijection():
    rng = np.random.default_rng(0)
    specs = [ss.sample(rng, spatial=bool(i % 2)) for i in range(10_000)]
    specs += [_shuffled_variant(s, rng) for s in specs[:500]]  # same hash, other spelling
    key_of_hash, hash_of_key = {}, {}
    for spec in specs:
        h, k = ss.spec_hash(spec), graph_key(spec_to_data(spec))
        assert key_of_hash.setdefault(h, k) == k, "same spec hash, different graph"
        assert hash_of_key.setdefault(k, h) == h, "graph collision between different specs"
    assert len(key_of_hash) >= 9_990  # random draws are (almost) all distinct


def test_semantically_equal_specs_give_identical_graphs():
    rng = np.random.default_rng(1)
    spec = ss.preset("ts2vec")
    spec["AugCell1"] = [{"name": "crop", "strength": 0.5}, {"name": "jitter", "strength": 0.05},
                        {"name": "resize", "strength": 0.2},
                        {"name": "timestamp_masking", "strength": 0.3}]
    spec["PairCell"]["contrasts"] = ["instance", "temporal", "cross_scale"]
    variant = copy.deepcopy(spec)
    variant["AugCell1"] = [spec["AugCell1"][3], spec["AugCell1"][1], spec["AugCell1"][0],
                           spec["AugCell1"][2]]
    variant["PairCell"]["contrasts"] = ["cross_scale", "instance", "temporal"]
    variant["LossCell"]["temperature"] = 1  # int on a float grid
    assert graph_key(spec_to_data(spec)) == graph_key(spec_to_data(variant))
    for _ in range(50):
        other = ss.sample(rng)
        variant = _shuffled_variant(other, rng)
        assert graph_key(spec_to_data(other)) == graph_key(spec_to_data(variant))


def test_meaningful_differences_change_the_graph():
    base = ss.preset("ts2vec")
    base["AugCell1"] = [{"name": "jitter", "strength": 0.05}, {"name": "resize", "strength": 0.2}]
    swapped_order = copy.deepcopy(base)
    swapped_order["AugCell1"] = base["AugCell1"][::-1]
    swapped_views = copy.deepcopy(base)
    swapped_views["AugCell1"], swapped_views["AugCell2"] = base["AugCell2"], base["AugCell1"]
    keys = {graph_key(spec_to_data(s)) for s in (base, swapped_order, swapped_views)}
    assert len(keys) == 3


def test_ts2vec_graph_structure():
    g = spec_to_graph(ss.preset("ts2vec"))
    assert Counter(_kinds(g)) == Counter({
        "input": 1, "aug:crop": 2, "aug:timestamp_masking": 2, "embed": 1, "op:ts2vec_conv": 1,
        "pair:instance": 1, "pair:temporal": 1, "loss:NT-Xent": 1, "hyper": 1, "output": 1})
    assert g.number_of_edges() == 14
    kinds = _kinds(g)
    op = kinds.index("op:ts2vec_conv")
    assert list(g.predecessors(op)) == [kinds.index("embed")]
    assert sorted(kinds[n] for n in g.successors(op)) == ["pair:instance", "pair:temporal"]
    assert kinds[next(iter(g.predecessors(kinds.index("embed"))))] == "aug:timestamp_masking"


def test_encoder_cell_wiring_operations_as_nodes():
    spec = ss.preset("ts2vec")
    spec["Encoder"].update(steps=3, cell=[[0, "gated_tcn"], [0, "identity"], [1, "ts2vec_conv"],
                                          [1, "diffusion_gcn"], [2, "temporal_attention"]])
    spec["AugCell1"], spec["AugCell2"] = [], []
    g = spec_to_graph(spec)
    kinds = _kinds(g)
    embed, ops = kinds.index("embed"), [i for i, k in enumerate(kinds) if k.startswith("op:")]
    assert [kinds[i] for i in ops] == ["op:gated_tcn", "op:identity", "op:ts2vec_conv",
                                       "op:diffusion_gcn", "op:temporal_attention"]
    preds = [sorted(g.predecessors(i)) for i in ops]
    # node1 = op0(s0); node2 = op1(s0) + op2(s1); node3 = op3(s1) + op4(s2)
    assert preds == [[embed], [embed], [ops[0]], [ops[0]], sorted([ops[1], ops[2]])]
    pair = kinds.index("pair:instance")
    assert sorted(g.predecessors(pair)) == sorted([ops[3], ops[4]])
    assert list(g.predecessors(embed)) == [kinds.index("input")]  # both views empty


def test_graphs_are_dags_reachable_and_features_consistent():
    rng = np.random.default_rng(2)
    for i in range(200):
        spec = ss.sample(rng, spatial=bool(i % 2))
        g, data = spec_to_graph(spec), spec_to_data(spec)
        assert nx.is_directed_acyclic_graph(g)
        kinds = _kinds(g)
        inp, out = kinds.index("input"), kinds.index("output")
        assert nx.descendants(g, inp) | {inp} == set(g.nodes)
        assert nx.ancestors(g, out) | {out} == set(g.nodes)
        assert data.x.dtype == torch.float32 and data.edge_index.dtype == torch.long
        assert data.x.shape == (g.number_of_nodes(), NUM_FEATURES)
        np.testing.assert_array_equal(node_features(g), data.x.numpy())
        assert sorted(map(tuple, data.edge_index.t().tolist())) == sorted(g.edges)
        assert data.edge_index.shape[1] == g.number_of_edges()
        x = data.x.numpy()
        assert x.min() >= 0.0 and x.max() <= 1.0
        np.testing.assert_array_equal(x[:, :len(NODE_KINDS)].sum(1), 1.0)


def test_adjacency_matrix_matches_networkx_and_data():
    rng = np.random.default_rng(4)
    specs = [ss.preset("ts2vec")] + [ss.sample(rng, spatial=bool(i % 2)) for i in range(100)]
    for spec in specs:
        adj, x = spec_to_adjacency(spec)
        g, data = spec_to_graph(spec), spec_to_data(spec)
        n = g.number_of_nodes()
        assert adj.shape == (n, n) and adj.dtype == np.uint8
        assert x.shape == (n, NUM_FEATURES) and x.dtype == np.float32
        ref = nx.to_numpy_array(g, nodelist=range(n), dtype=np.uint8)
        np.testing.assert_array_equal(adj, ref)
        dense = np.zeros((n, n), dtype=np.uint8)
        dense[data.edge_index[0].numpy(), data.edge_index[1].numpy()] = 1
        np.testing.assert_array_equal(adj, dense)
        np.testing.assert_array_equal(x, data.x.numpy())
        np.testing.assert_array_equal(x, node_features(g))
        assert adj.sum() == g.number_of_edges() and not np.diag(adj).any()
        assert not np.tril(adj).any()  # nodes are in topological order: edges point forward


def test_adjacency_of_the_ts2vec_preset():
    adj, x = spec_to_adjacency(ss.preset("ts2vec"))
    kinds = [NODE_KINDS[i] for i in x[:, :len(NODE_KINDS)].argmax(1)]
    i = {k: kinds.index(k) for k in ("input", "embed", "op:ts2vec_conv", "hyper", "output")}
    assert adj[i["embed"], i["op:ts2vec_conv"]] == 1 and adj[i["op:ts2vec_conv"], i["embed"]] == 0
    assert adj[i["input"], i["hyper"]] == adj[i["hyper"], i["output"]] == 1
    assert adj.sum() == 14


def test_invalid_spec_raises():
    spec = ss.preset("ts2vec")
    spec["Encoder"]["cell"] = [[1, "ts2vec_conv"]]
    for fn in (spec_to_data, spec_to_adjacency, spec_to_graph):
        with pytest.raises(ValueError, match=r"Encoder.cell\[0\]\[0\]"):
            fn(spec)


def test_pair_data_batching_offsets_each_side_by_its_own_nodes():
    rng = np.random.default_rng(3)
    graphs = [spec_to_data(ss.sample(rng)) for _ in range(4)]
    pairs = [PairData.from_graphs(graphs[0], graphs[1], task=np.ones(5), y=1.0),
             PairData.from_graphs(graphs[2], graphs[3], task=np.zeros(5), y=0.0)]
    batch = next(iter(DataLoader(pairs, batch_size=2, follow_batch=["x_a", "x_b"])))
    na, nb = graphs[0].num_nodes, graphs[1].num_nodes
    ea, eb = graphs[0].num_edges, graphs[1].num_edges
    assert na != nb or ea != eb or graphs[2].num_nodes != graphs[3].num_nodes
    torch.testing.assert_close(batch.edge_index_a[:, ea:], graphs[2].edge_index + na)
    torch.testing.assert_close(batch.edge_index_b[:, eb:], graphs[3].edge_index + nb)
    torch.testing.assert_close(batch.edge_index_b[:, :eb], graphs[1].edge_index)
    assert batch.x_b.shape[0] == nb + graphs[3].num_nodes
    assert batch.x_a_batch.tolist() == [0] * na + [1] * graphs[2].num_nodes
    assert batch.x_b_batch.tolist() == [0] * nb + [1] * graphs[3].num_nodes
    assert batch.task.shape == (2, 5) and batch.y.tolist() == [1.0, 0.0]
