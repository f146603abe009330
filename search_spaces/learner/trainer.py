"""Contrastive training of a spec's network: ``train(net, spec, series, profile, seed)``.

The loop follows TS2Vec (Yue et al., AAAI 2022; reference ``TS2Vec.fit``): long series are cut
into sections of at most ``max_train_length`` steps, each batch is cropped into two overlapping
views, each view is augmented by its AugCell, encoded, and the hierarchical contrastive loss is
taken on the overlap; AdamW, with a running weight average (SWA) of the network as the encoder.
"""
from __future__ import annotations

import copy
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel

from .augment import apply_view, contextual_crop, timestamp_mask
from .losses import hierarchical_contrastive_loss
from .model import count_parameters
from ..validation import validate

#: Named training profiles (training length). ``n_iters`` None = TS2Vec's rule (200 iterations
#: when the training array holds at most 100,000 values, else 600); ``max_length`` caps the
#: spec's crop length (max_train_length, in steps); ``max_seconds`` is a wall-clock safety cap
#: (seconds), recorded in the record when it ends training early.
#: ``smoke`` checks that a spec trains; ``screen`` (formerly ``seed``) is the short run of the
#: zero-shot seed records; ``small`` is the search default; ``paper`` is TS2Vec's schedule.
PROFILES = {
    "smoke": {"n_iters": 4, "max_length": 128, "max_seconds": 60.0},
    "screen": {"n_iters": 25, "max_length": 500, "max_seconds": 20.0},
    "small": {"n_iters": 60, "max_length": 1000, "max_seconds": 300.0},
    "paper": {"n_iters": None, "max_length": None, "max_seconds": None},
}
#: Former profile names still accepted for one release (with a DeprecationWarning).
DEPRECATED_PROFILES = {"seed": "screen"}
#: Deprecated alias of :data:`PROFILES` (one release).
BUDGETS = PROFILES
_KEYS = ("n_iters", "max_length", "max_seconds")


def resolve_profile(profile) -> dict:
    """A profile name (smoke, screen, small, paper) or dict -> the dict of ``n_iters``,
    ``max_length``, ``max_seconds`` (a dict may give any of them; the others are None).
    The former name ``seed`` resolves to ``screen`` with a DeprecationWarning.

    Raises:
        ValueError: unknown profile name, unknown keys, or non-positive values.
    """
    if isinstance(profile, str):
        if profile in DEPRECATED_PROFILES:
            new = DEPRECATED_PROFILES[profile]
            warnings.warn(f"profile {profile!r} is deprecated; use {new!r}", DeprecationWarning,
                          stacklevel=2)
            profile = new
        if profile not in PROFILES:
            raise ValueError(f"profile: got {profile!r}; allowed: {list(PROFILES)}")
        return dict(PROFILES[profile])
    if not isinstance(profile, dict):
        raise ValueError(f"profile: got {profile!r}; allowed: a name {list(PROFILES)} or a dict")
    unknown = set(profile) - set(_KEYS)
    if unknown:
        raise ValueError(f"profile.{sorted(unknown)[0]}: unknown key; allowed: {', '.join(_KEYS)}")
    out = {"n_iters": None, "max_length": None, "max_seconds": None, **profile}
    for key, value in out.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or value <= 0):
            raise ValueError(f"profile.{key}: got {value!r}; allowed: a positive number or None")
    return out


def resolve_budget(budget) -> dict:
    """Deprecated alias of :func:`resolve_profile` (one release)."""
    warnings.warn("resolve_budget is deprecated; use resolve_profile", DeprecationWarning,
                  stacklevel=2)
    return resolve_profile(budget)


def check_series(series) -> np.ndarray:
    """Validate a training array (N, T, C) with NaN for missing values; return it as float32.

    Raises:
        ValueError: not 3-D, fewer than 2 time steps, no channel, or no finite value.
    """
    arr = np.asarray(series, dtype=np.float32)
    if arr.ndim != 3:
        raise ValueError(f"series: got an array of shape {arr.shape}; allowed: 3-D (N, T, C)")
    if arr.shape[0] < 1 or arr.shape[1] < 2 or arr.shape[2] < 1:
        raise ValueError(f"series: got shape {arr.shape}; allowed: N >= 1, T >= 2, C >= 1")
    if np.isinf(arr).any():
        raise ValueError("series: contains inf; allowed: finite values or NaN for missing")
    if not np.isfinite(arr).any():
        raise ValueError("series: every value is NaN; allowed: at least one observed value")
    return arr


def split_sections(arr: np.ndarray, max_length: int) -> np.ndarray:
    """Cut (N, T, C) into ``T // max_length`` near-equal sections when that is at least 2
    (TS2Vec ``split_with_nan``: sections may exceed ``max_length``; each batch then takes a
    random window of ``max_length`` steps), NaN-padding the shorter ones, and drop sections with
    no observed value. -> (N', T', C)."""
    sections = arr.shape[1] // max_length
    if sections >= 2:
        parts = np.array_split(arr, sections, axis=1)
        length = parts[0].shape[1]
        arr = np.concatenate([np.pad(p, ((0, 0), (0, length - p.shape[1]), (0, 0)),
                                     constant_values=np.nan) for p in parts], axis=0)
    keep = ~np.isnan(arr).all(axis=(1, 2))
    return arr[keep]


def _views(x: torch.Tensor, spec: dict, gen: torch.Generator):
    """Two augmented views of a batch (B, T, C) and their overlap length."""
    strengths = []
    for key in ("AugCell1", "AugCell2"):
        crop = [a["strength"] for a in spec[key] if a["name"] == "crop"]
        strengths.append(crop[0] if crop else None)
    if strengths == [None, None]:
        v1, v2, crop_l = x, x, x.size(1)
    else:
        v1, v2, crop_l = contextual_crop(x, strengths[0], strengths[1], gen)
    views = []
    for key, v in (("AugCell1", v1), ("AugCell2", v2)):
        v = apply_view(v, spec[key], gen)
        p = [a["strength"] for a in spec[key] if a["name"] == "timestamp_masking"]
        mask = timestamp_mask((v.size(0), v.size(1)), p[0], gen) if p else None
        views.append((v, mask))
    return views, crop_l


def _n_iters(profile: dict, arr: np.ndarray) -> int:
    if profile["n_iters"] is not None:
        return int(profile["n_iters"])
    return 200 if arr.size <= 100_000 else 600


def train(net: nn.Module, spec: dict, series, profile="small", seed: int = 0,
          verbose: bool = False) -> tuple:
    """Train ``net`` (the :class:`~search_spaces.learner.model.CellEncoder` of ``spec``)
    contrastively on ``series`` (N, T, C; NaN = missing) and return ``(model, record)``.

    The global torch random stream must be where the caller wants it (the learner restores
    the state it had right after building the network). ``seed`` seeds batching and
    augmentation. ``model`` is a copy of the weight-averaged network in eval mode (the
    trained network itself when training diverged or ran no step).

    ``record``: ``status`` ("ok" or "diverged"), ``loss_curve`` (one float per iteration),
    ``seconds``, ``n_params``, ``n_iters``, ``n_epochs``, ``stopped`` ("iterations", "time"
    or "diverged"), ``profile`` (the resolved dict), ``seed``, ``n_train_sections``,
    ``train_length`` and ``crop_length`` (steps). A NaN/inf loss ends training with status
    "diverged"; it is not raised.

    Raises:
        ValueError: invalid spec, series or profile (checked before any training).
    """
    validate(spec)
    arr = check_series(series)
    profile = resolve_profile(profile)
    if arr.shape[2] != net.n_features:
        raise ValueError(f"series: got {arr.shape[2]} channels; allowed: C = {net.n_features}")
    max_length = spec["Train"]["max_train_length"]
    if profile["max_length"] is not None:
        max_length = min(max_length, int(profile["max_length"]))
    data = split_sections(arr, max_length)
    run = _Run(net, spec, data, max_length, seed)
    run.loop(_n_iters(profile, data), profile["max_seconds"], verbose)
    record = {"status": run.status, "stopped": run.stopped, "loss_curve": run.curve,
              "seconds": run.seconds, "n_params": count_parameters(run.net),
              "n_iters": len(run.curve), "n_epochs": run.epochs, "profile": profile,
              "seed": seed, "n_train_sections": int(len(data)),
              "train_length": int(data.shape[1]), "crop_length": int(max_length)}
    done = run.curve and run.status == "ok"
    model = copy.deepcopy(run.averaged.module if done else run.net)
    return model.eval(), record


class _Run:
    """State of one training run: network, weight average, optimiser, random streams."""

    def __init__(self, net: nn.Module, spec: dict, data: np.ndarray, max_length: int,
                 seed: int):
        self.gen = torch.Generator().manual_seed(seed)
        self.order_rng = np.random.default_rng(seed)
        self.spec, self.max_length = spec, max_length
        self.net = net
        self.averaged = AveragedModel(self.net)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=spec["Train"]["lr"])
        self.batch_size = min(spec["Train"]["batch_size"], len(data))
        self.data = torch.from_numpy(data)
        self.curve, self.status, self.stopped, self.epochs, self.seconds = [], "ok", None, 0, 0.0

    def loop(self, n_iters: int, max_seconds, verbose: bool) -> None:
        """Epochs of shuffled batches until ``n_iters`` steps, divergence or ``max_seconds``."""
        start = time.perf_counter()
        self.net.train()
        while self.stopped is None:
            self.epochs += 1
            perm = self.order_rng.permutation(len(self.data))
            for i in range(0, len(perm), self.batch_size):
                loss = self.step(self.data[perm[i:i + self.batch_size]])
                self.curve.append(loss)
                if not np.isfinite(loss):
                    self.status = self.stopped = "diverged"
                    break
                self.averaged.update_parameters(self.net)
                if verbose:
                    print(f"iter {len(self.curve)}/{n_iters} loss {loss:.4f}")
                if len(self.curve) >= n_iters:
                    self.stopped = "iterations"
                elif max_seconds and time.perf_counter() - start > max_seconds:
                    self.stopped = "time"
                if self.stopped:
                    break
        self.seconds = time.perf_counter() - start

    def step(self, batch: torch.Tensor) -> float:
        """One optimisation step on a batch (B, T, C): a random window of ``max_length`` steps
        when the sections are longer (TS2Vec), two views, the loss; returns it (may be NaN/inf)."""
        if batch.size(1) > self.max_length:
            offset = int(torch.randint(batch.size(1) - self.max_length + 1, (1,),
                                       generator=self.gen))
            batch = batch[:, offset:offset + self.max_length]
        ((v1, m1), (v2, m2)), crop_l = _views(batch, self.spec, self.gen)
        self.optimizer.zero_grad()
        z1 = self.net(v1, m1)[:, -crop_l:]
        z2 = self.net(v2, m2)[:, :crop_l]
        loss = hierarchical_contrastive_loss(z1, z2, self.spec["PairCell"], self.spec["LossCell"])
        if torch.isfinite(loss) and loss.requires_grad:  # a constant loss (no contrast
            loss.backward()  # possible, e.g. instance contrast with B = 1) trains nothing
            self.optimizer.step()
        return float(loss.detach())
