"""The architecture-hyperparameter comparator of ctsnas (AutoCTS++, Wu et al., VLDB Journal 2024).

``graph``: a spec as a graph with operations as nodes (:func:`spec_to_graph` as networkx,
:func:`spec_to_data` as torch_geometric ``Data``, :func:`spec_to_adjacency` as an attributed
adjacency matrix, :class:`PairData` for batched pairs).
``tahc``: the task-aware comparator T-AHC (:class:`TAHC`, :class:`TAHCEnsemble`,
:func:`train_tahc`, :func:`rank`, :func:`save`, :func:`load`).

Imports ``search_spaces`` only of the project (never ``nas``, ``downstream`` or ``seeds``).
"""
from .graph import (
    NUM_FEATURES,
    PairData,
    graph_key,
    node_features,
    spec_to_adjacency,
    spec_to_data,
    spec_to_graph,
)
from .tahc import TAHC, TAHCEnsemble, load, rank, save, train_tahc

__all__ = ["NUM_FEATURES", "TAHC", "PairData", "TAHCEnsemble", "graph_key", "load",
           "node_features", "rank", "save", "spec_to_adjacency", "spec_to_data", "spec_to_graph",
           "train_tahc"]
