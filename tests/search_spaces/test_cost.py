"""The analytical window cost used as the sampling cap."""
from __future__ import annotations

import copy

import numpy as np

import search_spaces as ss
from search_spaces.cost import relative_cost, window_macs


def test_ts2vec_is_the_unit_and_costs_grow_with_width_depth_and_nodes():
    ts2vec = ss.preset("ts2vec")
    assert relative_cost(ts2vec, 8) == 1.0
    wide = copy.deepcopy(ts2vec)
    wide["Encoder"]["hidden"] = 128
    assert window_macs(wide, 8) > 3 * window_macs(ts2vec, 8) / 2
    shallow = copy.deepcopy(ts2vec)
    shallow["Encoder"]["layers"] = 2
    assert window_macs(shallow, 8) < window_macs(ts2vec, 8)
    spatial = copy.deepcopy(ts2vec)
    spatial["Encoder"].update(steps=2, cell=[[0, "ts2vec_conv"], [0, "identity"],
                                             [1, "diffusion_gcn"]])
    # node layout runs the cell on every variable: cost grows with N
    assert window_macs(spatial, 16) > 1.8 * window_macs(spatial, 8) > window_macs(spatial, 1)


def test_attention_cost_grows_with_the_window_length():
    rng = np.random.default_rng(0)
    spec = ss.sample(rng)
    spec["Encoder"].update(steps=1, cell=[[0, "temporal_attention"]])
    assert window_macs(spec, 8, 400) > 2 * window_macs(spec, 8, 200)
