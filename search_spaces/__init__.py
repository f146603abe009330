"""The joint search space of ctsnas: spec, validation, sampler, ops, model builder, trainer.

Imports nothing else of the project (see DEVELOPERS.md).
"""
from .sampler import mutate, sample, space_size
from .spec import (PRESETS, SPEC_VERSION, canonical, preset, spec_hash, to_json,
                   uses_spatial_ops)
from .validation import validate

__all__ = ["PRESETS", "SPEC_VERSION", "canonical", "mutate", "preset", "sample", "space_size",
           "spec_hash", "to_json", "uses_spatial_ops", "validate"]

from .encoding import Encoder  # noqa: E402
from .model import build_model, count_parameters  # noqa: E402
from .trainer import BUDGETS, fit, resolve_budget  # noqa: E402

__all__ += ["BUDGETS", "Encoder", "build_model", "count_parameters", "fit", "resolve_budget"]
