"""The joint search space of ctsnas (torch-free): declaration, spec, validation, sampling, cost.

The space is declared once in :mod:`search_spaces.space` (:data:`SPACE`); everything here is
derived from it. ``import search_spaces`` needs no torch; the contrastive learner (ops,
augmentations, losses, trainer, encoder life cycle) is the subpackage :mod:`search_spaces.learner`.
Imports nothing else of the project (see DEVELOPERS.md).
"""
from .sampler import mutate, sample, space_size
from .space import SPACE
from .spec import (
    PRESETS,
    SPEC_VERSION,
    canonical,
    preset,
    spec_hash,
    to_json,
    uses_spatial_ops,
)
from .validation import validate

__all__ = ["PRESETS", "SPACE", "SPEC_VERSION", "canonical", "mutate", "preset", "sample",
           "space_size", "spec_hash", "to_json", "uses_spatial_ops", "validate"]
