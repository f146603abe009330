"""The contrastive learner of a spec: operations, augmentations, losses, model and trainer.

Needs torch; the space description (:mod:`search_spaces`) does not.
"""
from .encoding import Encoder
from .model import build_model, count_parameters
from .trainer import BUDGETS, fit, resolve_budget

__all__ = ["BUDGETS", "Encoder", "build_model", "count_parameters", "fit", "resolve_budget"]
