"""The contrastive learner of a spec: operations, augmentations, losses, model, trainer and
the :class:`ContrastiveLearner` object (build, fit, encode, save, load).

Needs torch; the space description (:mod:`search_spaces`) does not. Training profiles:
smoke, screen (formerly ``seed``), small, paper (:data:`PROFILES`).
"""
from .contrastive import ContrastiveLearner, fit
from .model import build_model, count_parameters
from .trainer import BUDGETS, PROFILES, resolve_budget, resolve_profile

__all__ = ["ContrastiveLearner", "PROFILES", "build_model", "count_parameters", "fit",
           "resolve_profile",
           # deprecated aliases, kept for one release:
           "BUDGETS", "resolve_budget"]
