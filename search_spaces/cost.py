"""Analytical inference cost of a spec: multiply-accumulates (MACs) of one encoder window.

A deterministic FLOPs proxy in the spirit of hardware-aware NAS (e.g. a MACs budget as in
MnasNet / FBNet): seed generation and zero-shot queries sample under a cost cap so every
candidate can be trained and probed within the profile's time. Counted: weights applied at every
(node, timestep) for convolutions and linear maps, plus the score/value products of attention
(T per temporal-attention position, N per spatial-attention position); element-wise terms,
norms and biases are ignored. The per-op coefficients are declared with the ops
(:data:`search_spaces.space.OPS`, ``Op.macs``).
"""
from __future__ import annotations

from . import space as _space
from .spec import TS2VEC, uses_spatial_ops


def _op_macs(op: str, hidden: int, n_nodes: int, length: int) -> int:
    """MACs per (node, timestep) of one encoder op of width H = ``hidden``:
    a*H**2 + b*T*H + c*N*H with (a, b, c) = ``Op.macs``."""
    a, b, c = _space.SPACE.ops[op].macs
    return a * hidden * hidden + b * length * hidden + c * n_nodes * hidden


def window_macs(spec: dict, n_features: int, length: int = 201) -> int:
    """MACs of encoding one window of T = ``length`` steps with C = ``n_features`` input channels.

    Node layout (a spatial op and C > 1) runs the cell on each of the N = C variables;
    otherwise N = 1 (see :class:`search_spaces.learner.model.CellEncoder`).
    """
    enc = spec["Encoder"]
    hidden, repr_dim = enc["hidden"], enc["repr_dim"]
    n_nodes = n_features if uses_spatial_ops(spec) and n_features > 1 else 1
    per_step = n_nodes * (hidden * (1 if n_nodes > 1 else n_features))  # input projection
    cell = sum(_op_macs(op, hidden, n_nodes, length) for _, op in enc["cell"])
    per_step += n_nodes * enc["layers"] * cell
    per_step += 3 * hidden * repr_dim + 3 * repr_dim * repr_dim + hidden * repr_dim  # output block
    return int(per_step * length)


def relative_cost(spec: dict, n_features: int, length: int = 201) -> float:
    """:func:`window_macs` relative to the ``ts2vec`` preset on the same input."""
    return window_macs(spec, n_features, length) / window_macs(TS2VEC, n_features, length)
