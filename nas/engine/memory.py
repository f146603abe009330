"""Pre-flight memory estimates of a trial (training + probe) and the limit they are held to.

The training model (bytes, float32 tensors), for a spec with ``layers`` layers of ``hidden``
units over N nodes (N = C in the node layout of a spatial cell, else 1), an encoder cell of
``e`` edges, representation size D, effective batch B and crop length L::

    PROCESS + FIXED + 4 * 2 * B * L * (layers * hidden * N * (10 e + 2) + 4 D)
                    + 4 * 0.25 * B * (2 L)^2 + 16 * T * C

(two augmented views' activations and their gradients; the temporal contrast's similarity
matrices; the training array). B = min(batch_size, sections) and L = min(crop, T) follow
``search_spaces.learner.trainer.split_sections``. Calibrated on the ``ts2vec`` preset (peak
RSS of ``learner.fit``, 3 iterations): B x L = 8 x 128, 8 x 500, 4 x 1000 (C = 14 and 214) and
3 x 3000 measured 0.43-0.84 GB peak RSS; the model gives 1.04-1.37 x of each. The probe's part is
:func:`downstream.estimate_task_probe_bytes` with the spec's D as features.
"""
from __future__ import annotations

import math
import os
import re

import downstream as ds
from search_spaces.learner import resolve_profile
from search_spaces.spec import uses_spatial_ops

#: Resident memory of a worker process with torch loaded, and the model/optimiser floor.
PROCESS_BYTES = 250 * 2 ** 20
FIXED_BYTES = 120 * 2 ** 20
#: Share of the machine's RAM used as the default limit.
DEFAULT_SHARE = 0.6
_UNITS = {"": 1, "K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30, "T": 2 ** 40}


def total_ram() -> int:
    """The machine's physical memory in bytes (``os.sysconf``)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def default_max_bytes() -> int:
    """The default memory limit: :data:`DEFAULT_SHARE` of the machine's RAM, in bytes."""
    return int(DEFAULT_SHARE * total_ram())


def parse_bytes(text, name: str = "max_bytes") -> int:
    """``"8G"``, ``"512M"``, ``"1.5GiB"`` or a number of bytes -> bytes (K/M/G/T are powers of
    1024).

    Raises:
        ValueError: not a finite positive size, naming ``name``.
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.I)
    value = float(m.group(1)) * _UNITS[m.group(2).upper()] if m else math.nan
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"{name}: got {text!r}; allowed: bytes > 0 as a number or with a unit "
                         "K, M, G or T, e.g. 8G")
    return int(value)


def estimate_training_bytes(spec: dict, length: int, channels: int, profile) -> int:
    """Peak memory (bytes) of training ``spec`` on ``length`` steps of ``channels`` input
    channels (C, calendar covariates included) at ``profile`` (see the module docstring).

    Raises:
        ValueError: unknown profile.
    """
    crop = spec["Train"]["max_train_length"]
    limit = resolve_profile(profile)["max_length"]
    crop = min(crop, int(limit)) if limit is not None else crop
    sections = length // crop
    batch = min(spec["Train"]["batch_size"], sections) if sections >= 2 else 1
    crop = crop if sections >= 2 else min(crop, length)
    enc = spec["Encoder"]
    nodes = channels if uses_spatial_ops(spec) and channels > 1 else 1
    per_step = enc["layers"] * enc["hidden"] * nodes * (10 * len(enc["cell"]) + 2)
    floats = (2 * batch * crop * (per_step + 4 * enc["repr_dim"])
              + 0.25 * batch * (2 * crop) ** 2 + 4 * length * channels)
    return int(PROCESS_BYTES + FIXED_BYTES + 4 * floats)


def estimate_trial_bytes(spec: dict, task: ds.ForecastTask, horizons, profile,
                         test: bool = False, stride: int = 1, features: str = "repr") -> int:
    """Peak memory (bytes) of one trial: training on the task's training split plus the probe
    of the spec's representation (with ``features="repr+raw"`` also the raw lookback window of
    the input variables; counted together, an upper bound).

    Raises:
        ValueError: unknown profile, a horizon too long for the task.
    """
    start, end = task.splits["train"]
    train = estimate_training_bytes(spec, end - start, int(task.x.shape[1]), profile)
    width = spec["Encoder"]["repr_dim"]
    if features == "repr+raw":
        width += ds.PADDING * (int(task.x.shape[1]) - task.n_covariates)
    probe = ds.estimate_task_probe_bytes(task, horizons, width, test, stride=stride)
    return train + probe


def gib(n: float) -> str:
    return f"{n / 2 ** 30:.2f} GiB"


def check_trial_memory(spec: dict, task: ds.ForecastTask, horizons, profile, max_bytes,
                       test: bool = False, stride: int = 1, features: str = "repr") -> int:
    """Refuse a trial whose :func:`estimate_trial_bytes` exceeds ``max_bytes`` (None: no
    limit). -> the estimate.

    Raises:
        ds.ProbeMemoryError: (a ValueError) the estimate exceeds the limit; the message names
            both.
    """
    estimate = estimate_trial_bytes(spec, task, horizons, profile, test, stride, features)
    if max_bytes is not None and estimate > max_bytes:
        raise ds.ProbeMemoryError(estimate, max_bytes, "training and probing the spec, "
                                  f"{task.x.shape[1]} input channels")
    return estimate
