"""The joint search space of ctsnas (torch-free): spec, validation, sampler, size and cost.

``import search_spaces`` needs no torch; the contrastive learner (ops, augmentations, losses,
trainer, encoder life cycle) is the subpackage :mod:`search_spaces.learner`.
Imports nothing else of the project (see DEVELOPERS.md).
"""
from .sampler import mutate, sample, space_size
from .spec import (PRESETS, SPEC_VERSION, canonical, preset, spec_hash, to_json,
                   uses_spatial_ops)
from .validation import validate

__all__ = ["PRESETS", "SPEC_VERSION", "canonical", "mutate", "preset", "sample", "space_size",
           "spec_hash", "to_json", "uses_spatial_ops", "validate"]
