"""The joint search space, declared once (torch-free): :data:`SPACE`, with the op table
:data:`OPS` and the augmentation table :data:`AUGS` (the declaration is at the end of this file,
after the few types it is written in).

Everything else is derived from this declaration: validation (:func:`search_spaces.validate`),
the canonical form and hash, sampling and mutation, ``space_size``, the MACs cost model, the
comparator's graph node kinds and features and its flat one-hot encoding.

**To add an encoder operation**: one ``Op(...)`` row in :data:`OPS` (plus its torch module under
the same name in ``search_spaces/learner/ops.py``). **To add an augmentation**: one ``Aug(...)``
row in :data:`AUGS` (plus its function in ``search_spaces/learner/augment.py``). **To add a
choice**: one value in a ``Choice`` grid below. Sources: augmentation and contrastive-strategy
cells after AutoCL (Jing et al., 2024), the encoder cell after AutoCTS++ (Wu et al., VLDB Journal
2024), TS2Vec (Yue et al., AAAI 2022) for the pair/loss choices; what each value means is commented
beside it.

Node-feature encodings (``Choice.node``; see :mod:`comparator.graph`): ``"onehot"``; ``"max"``
= value / max(grid); ``"log"`` = log-scale position between min(grid) (0) and max(grid) (1);
``"kind"`` = the value names the node's kind (no param). The flat encoding
(:func:`comparator.baselines.flat_features`) is one-hot for every field.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property

PLACES = ("ordered", "first", "last")
NODE_ENCODINGS = ("onehot", "max", "log", "kind")


@dataclass(frozen=True)
class Op:
    """An encoder operation. ``spatial``: mixes the N variables (needs the node layout).
    ``macs`` = (a, b, c): MACs per (node, timestep) = a*H**2 + b*T*H + c*N*H for width H,
    window length T and N variables (see :mod:`search_spaces.cost`)."""
    name: str
    spatial: bool
    macs: tuple


@dataclass(frozen=True)
class Aug:
    """An augmentation with its strength grid. ``place``: ``"ordered"`` (applied in list
    order; the order is part of the spec) or where its canonical position is when its position
    carries no meaning: ``"first"`` or ``"last"`` in the view."""
    name: str
    strengths: tuple
    place: str = "ordered"


@dataclass(frozen=True)
class Choice:
    """One value of ``grid``; ints are accepted on float grids, never floats on int grids.
    ``node``: its encoding in the comparator's node params (see the module docstring)."""
    grid: tuple
    node: str = "onehot"


@dataclass(frozen=True)
class Subset:
    """A non-empty list of distinct items of ``grid``; order carries no meaning (canonical:
    grid order). Each item is one graph node. ``noun`` names an item in error messages."""
    grid: tuple
    noun: str


@dataclass(frozen=True)
class Edges:
    """The AutoCTS++ encoder cell: ``2*steps-1`` ``[source, op]`` pairs over the ops ``grid``,
    ``steps`` read from the sibling field named ``steps``; wiring rule: :func:`edge_sources`."""
    grid: tuple
    steps: str = "steps"


@dataclass(frozen=True)
class View:
    """An augmentation view: a list of ``{"name", "strength"}`` over ``augs``, each name at most
    once. The sampler draws at most ``max_sampled_ordered`` ordered augmentations per view;
    ``strength_node`` is the strength's node-feature encoding (``"max"`` or ``"log"``)."""
    augs: tuple
    max_sampled_ordered: int = 3
    strength_node: str = "max"

    @cached_property
    def by_name(self) -> dict:
        """Augmentation name -> :class:`Aug`, in table order."""
        return {a.name: a for a in self.augs}


def edge_sources(k: int) -> tuple:
    """AutoCTS++ wiring of edge ``k`` of the encoder cell: ``(node, allowed, free)``.

    Edge 0 feeds node 1 = op(state 0); edges 2i-1 and 2i feed node i+1 = op_a(state j) +
    op_b(state i): ``allowed`` sources are ``range(i)`` for the *free* edge 2i-1 and ``[i]``
    for edge 2i (Wu et al., AutoCTS++, VLDB Journal 2024).
    """
    node = (k + 1) // 2 + 1
    free = k % 2 == 1
    return node, (range(node - 1) if free else range(node - 1, node)), free


@dataclass(frozen=True, eq=False)
class Space:
    """The search space: the spec ``version`` and the ``cells`` in spec order, each a
    :class:`View` or a dict ``field name -> Choice | Subset | Edges`` in spec key order."""
    version: int
    cells: dict = field(repr=False)

    @cached_property
    def cell_keys(self) -> tuple:
        return tuple(self.cells)

    @cached_property
    def top_keys(self) -> tuple:
        return ("version",) + self.cell_keys

    @cached_property
    def view(self) -> View:
        """The augmentation view (every View cell shares it)."""
        return next(c for c in self.cells.values() if isinstance(c, View))

    @cached_property
    def augs(self) -> dict:
        """Augmentation name -> :class:`Aug`, in table order."""
        return self.view.by_name

    @cached_property
    def edges_at(self) -> tuple:
        """(cell key, field name) of the encoder's :class:`Edges` field."""
        return next((key, name) for key, cell in self.cells.items() if isinstance(cell, dict)
                    for name, f in cell.items() if isinstance(f, Edges))

    @cached_property
    def ops(self) -> dict:
        """Op name -> :class:`Op`, in table order."""
        key, name = self.edges_at
        return {op.name: op for op in self.cells[key][name].grid}

    @cached_property
    def spatial_ops(self) -> frozenset:
        return frozenset(n for n, op in self.ops.items() if op.spatial)

    @cached_property
    def canonical_slot(self) -> dict:
        """Augmentation name -> its canonical position key in a view: ``None`` for ordered ones
        (kept in list order, between), ``(0, i)`` / ``(2, i)`` for ``first`` / ``last`` ones
        (``i`` = table index)."""
        rank = {"first": 0, "last": 2}
        return {a.name: (rank[a.place], i) if a.place in rank else None
                for i, a in enumerate(self.view.augs)}

    def op_names(self, spatial: bool = True) -> tuple:
        """All op names, or the temporal ones only (``spatial=False``), in table order."""
        return tuple(n for n, op in self.ops.items() if spatial or not op.spatial)

    def replace(self, grids: dict | None = None, augs: tuple | None = None) -> Space:
        """A copy with other grids (for small test spaces): ``grids`` maps ``"Cell.field"`` to a
        new grid (Ops for the Edges field); ``augs`` replaces the augmentations of every view."""
        cells = {k: (dict(c) if isinstance(c, dict) else c) for k, c in self.cells.items()}
        for path, grid in (grids or {}).items():
            key, name = path.split(".")
            cells[key][name] = dataclasses.replace(cells[key][name], grid=tuple(grid))
        if augs is not None:
            cells = {k: (dataclasses.replace(c, augs=tuple(augs)) if isinstance(c, View) else c)
                     for k, c in cells.items()}
        return Space(self.version, cells)


# --------------------------------------------------------------------------- the declaration

#: Encoder operations (names = ``search_spaces.learner.ops.OPS`` keys). Temporal: identity, gated
#: dilated causal conv (WaveNet / Graph WaveNet; filter and gate convs, kernel 2), the TS2Vec
#: dilated-conv residual block (two kernel-3 convs), temporal self-attention (T score/value
#: products per position). Spatial, across the N variables of correlated input: diffusion graph
#: conv with an adaptive adjacency (Graph WaveNet, Wu et al., IJCAI 2019), spatial
#: self-attention (N score/value products per position).
OPS = (
    Op("identity", spatial=False, macs=(0, 0, 0)),
    Op("gated_tcn", spatial=False, macs=(4, 0, 0)),
    Op("ts2vec_conv", spatial=False, macs=(6, 0, 0)),
    Op("temporal_attention", spatial=False, macs=(4, 2, 0)),
    Op("diffusion_gcn", spatial=True, macs=(3, 0, 2)),
    Op("spatial_attention", spatial=True, macs=(4, 0, 2)),
)

#: Augmentations and strength grids (data are standardised, so noise scales are in std units).
#: resize: maximal relative time-axis rescale s (factor f ~ U(1-s, 1), resampled to T*f steps
#: and back); jitter: Gaussian noise std; rescaling: std of the per-(instance, channel) amplitude
#: factor ~ N(1, s); point_masking: probability a (t, c) point is zeroed; frequency_masking:
#: fraction of rFFT bins zeroed; crop: the TS2Vec contextual crop, taken before any transform,
#: fraction of the free room on each side the context may extend over (1.0 = TS2Vec);
#: timestamp_masking: the TS2Vec latent mask after the input projection, probability a
#: timestamp is masked (0.5 = TS2Vec). The position of the last two carries no meaning.
AUGS = (
    Aug("resize", (0.1, 0.2, 0.3, 0.5)),
    Aug("jitter", (0.01, 0.05, 0.1, 0.3)),
    Aug("rescaling", (0.1, 0.2, 0.5, 1.0)),
    Aug("point_masking", (0.05, 0.1, 0.2, 0.3)),
    Aug("frequency_masking", (0.05, 0.1, 0.2, 0.3)),
    Aug("crop", (0.25, 0.5, 1.0), place="first"),
    Aug("timestamp_masking", (0.1, 0.3, 0.5, 0.7), place="last"),
)

_VIEW = View(AUGS, max_sampled_ordered=3, strength_node="max")

SPACE = Space(version=1, cells={
    "AugCell1": _VIEW,  # view 1
    "AugCell2": _VIEW,  # view 2
    # Gaussian jitter std added to representations in training, representation masking
    # (dropout probability; TS2Vec's repr_dropout is 0.1), normalisation over D.
    "EmbedCell": {"jitter": Choice((0.0, 0.01, 0.05, 0.1), node="max"),
                  "masking": Choice((0.0, 0.1, 0.2, 0.3), node="max"),
                  "norm": Choice(("none", "l2", "layernorm", "batchnorm"))},
    # instance: across the B instances at each timestamp; temporal: across the T timestamps of
    # each instance (TS2Vec, Eq. 1-2); cross_scale: each timestamp of view 1 against the pooled
    # series representation of each instance in view 2 (DIM/CPC-style local-global contrast).
    # Hierarchy pooling and its kernel; weight of level l (0 = finest): uniform (TS2Vec),
    # fine_first ~ 2**-l, coarse_first ~ 2**l, normalised to sum to one.
    "PairCell": {"contrasts": Subset(("instance", "temporal", "cross_scale"), noun="contrast"),
                 "pooling": Choice(("max", "avg")),
                 "kernel": Choice((2, 3, 5, 7), node="max"),
                 "level_weighting": Choice(("uniform", "fine_first", "coarse_first"))},
    # NT-Xent: both views of all instances are candidates (SimCLR; TS2Vec's form); InfoNCE:
    # only the other view's items (CPC, MoCo); triplet: hinge with margin 1 on (negative -
    # positive) similarity / temperature over all negatives. temperature 1.0 = none (TS2Vec).
    "LossCell": {"loss": Choice(("InfoNCE", "NT-Xent", "triplet"), node="kind"),
                 "similarity": Choice(("dot", "cosine", "neg_euclidean")),
                 "temperature": Choice((0.05, 0.1, 0.2, 0.5, 1.0), node="log")},
    # AutoCTS++ cell of ``steps`` nodes stacked ``layers`` times, width H, output dim D.
    "Encoder": {"steps": Choice((1, 2, 3, 4), node="max"),
                "layers": Choice((2, 4, 6, 8, 10), node="max"),
                "cell": Edges(OPS),
                "hidden": Choice((32, 64, 128), node="max"),
                "repr_dim": Choice((64, 128, 320), node="max")},
    # AdamW learning rate, batch size B, and the crop length: training series longer than
    # max_train_length are split into sections of at most that many steps (TS2Vec).
    "Train": {"lr": Choice((1e-4, 3e-4, 1e-3, 3e-3), node="log"),
              "batch_size": Choice((4, 8, 16, 32), node="max"),
              "max_train_length": Choice((200, 500, 1000, 3000), node="max")},
})
"""The space. Tests that shrink it replace it as a whole (:meth:`Space.replace`): every derived
function reads ``space.SPACE`` at call time."""
