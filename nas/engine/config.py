"""A search run's config: defaults, the keys that define a run (a resumed run must keep them),
deprecated names, checks before any work, and the merge with a run directory's stored config.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

from downstream.probes import check_features
from search_spaces import learner
from search_spaces.learner.trainer import DEPRECATED_PROFILES

from .evaluate import LOAD_OPTIONS
from .forecast import check_downstream
from .memory import default_max_bytes
from .store import DB_NAME, RunStore
from .strategies import STRATEGY_DEFAULTS, check_fidelity, check_strategy

#: Config keys that define a run (a resumed run must not change them).
PLAN_KEYS = ("data", "data_dir", "target", "univariate", "horizons", "trials", "profile", "seed",
             "extra_specs", "features", "downstream") + LOAD_OPTIONS
DEFAULTS = {"data_dir": None, "target": None, "univariate": False, "horizons": [24, 48],
            "extra_specs": [], "features": "repr", "downstream": "probe",
            "profile": "small", "seed": 0, "workers": 1, "cpus_per_trial": 1,
            "trial_timeout": None, "max_retries": 3, "address": None,
            "sort_dates": False, "dedupe": False, "date_format": None, "max_memory": None,
            "time_budget": None}
PLAN_KEYS += tuple(STRATEGY_DEFAULTS)  # strategy, population, sample_size
DEFAULTS.update(STRATEGY_DEFAULTS)
#: Deprecated names still accepted for one release: config key ``budget`` (now ``trials``) and
#: the learner's former profile names (``seed``, now ``screen``).
KEY_ALIASES = {"budget": "trials"}
PROFILE_ALIASES = DEPRECATED_PROFILES


def profile_name(profile):
    """The current name of a training profile (deprecated ``seed`` -> ``screen``); a profile
    dict is returned unchanged."""
    return PROFILE_ALIASES.get(profile, profile) if isinstance(profile, str) else profile


def resolve_profile(profile) -> dict:
    """A training profile (name, deprecated name or dict) -> the learner's dict of
    ``n_iters``, ``max_length``, ``max_seconds`` (no deprecation warning: the name is
    normalised first).

    Raises:
        ValueError: unknown profile name or bad dict (from the learner).
    """
    return learner.resolve_profile(profile_name(profile))


def current_names(config: dict, warn: bool = False) -> dict:
    """``config`` with deprecated keys and profile names replaced by the current ones
    (``budget`` -> ``trials``, profile ``seed`` -> ``screen``), e.g. for a stored old run;
    with ``warn`` a DeprecationWarning per deprecated key.

    Raises:
        ValueError: both a key and its deprecated alias are given with different values.
    """
    out = dict(config)
    for old, new in KEY_ALIASES.items():
        if old in out:
            if warn:
                warnings.warn(f"config key {old!r} is deprecated; use {new!r}",
                              DeprecationWarning, stacklevel=3)
            value = out.pop(old)
            if out.setdefault(new, value) != value:
                raise ValueError(f"{old}: got {value!r} next to {new}={out[new]!r}; allowed: "
                                 f"only {new} ({old} is its deprecated name)")
    if "profile" in out:
        out["profile"] = profile_name(out["profile"])
    return out


def _positive_int(config: dict, key: str) -> None:
    v = config.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{key}: got {v!r}; allowed: an int >= 1")


def check_config(config: dict) -> dict:
    """Fill defaults and refuse bad input before Ray starts (deprecated names accepted, see
    :func:`current_names`).

    Raises:
        ValueError: unknown key, no data, trials < 1, unknown profile, workers /
            cpus_per_trial < 1, non-positive trial timeout.
    """
    config = current_names(config)
    allowed = set(DEFAULTS) | {"data", "trials"}
    unknown = set(config) - allowed
    if unknown:
        raise ValueError(f"config: unknown key {min(unknown)!r}; allowed: {sorted(allowed)}")
    if not config.get("data"):
        raise ValueError("data: required; allowed: a dataset name (ctsnas datasets) or a CSV path")
    config = {**DEFAULTS, **config}
    for key in ("trials", "workers", "cpus_per_trial"):
        _positive_int(config, key)
    resolve_profile(config["profile"])
    check_features(config["features"])
    check_downstream(config)
    check_strategy(config["strategy"], config["population"], config["sample_size"])
    check_fidelity(config["fidelity"], config["rungs"], config["eta"])
    for key in ("trial_timeout", "time_budget"):
        _positive_seconds(config, key)
    return config


def _positive_seconds(config: dict, key: str) -> None:
    v = config[key]
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                          or not math.isfinite(v) or v <= 0):
        raise ValueError(f"{key}: got {v!r}; allowed: finite seconds > 0")


def merge_stored(run_dir, given: dict, resume: bool) -> dict:
    """The user's options merged with the config stored in ``run_dir`` (if any; a run written
    with the deprecated names is read with the current ones).

    Raises:
        ValueError: the directory holds another run and ``resume`` is False, or ``resume``
            given a plan option (data, horizons, trials, profile, seed, ...) that differs.
    """
    path = Path(run_dir) / DB_NAME
    stored = None
    if path.exists():
        store = RunStore(run_dir)
        stored = store.get_config()
        store.close()
    given = current_names(given)
    if stored is None:
        return given
    stored = current_names(stored)
    if not resume:
        raise ValueError(f"run_dir: {run_dir} already holds a run ({stored['data']}, "
                         f"{stored['trials']} trials); resume it (resume=True) or pick another "
                         "directory")
    for key in PLAN_KEYS:
        if key in given and given[key] != stored.get(key, DEFAULTS.get(key)):
            raise ValueError(f"{key}: got {given[key]!r} but the run in {run_dir} has "
                             f"{stored.get(key, DEFAULTS.get(key))!r}; allowed: the run's own "
                             "value (or leave it out) when resuming")
    return {**given, **stored}


def locked_config(run_dir, given: dict, resume: bool, config: dict) -> dict:
    """The config merged again under the run directory's lock (another driver may have
    written the run meanwhile), with ``max_memory`` defaulted (:func:`default_max_bytes`).

    Raises:
        ValueError: as :func:`merge_stored`, or the run's plan changed while waiting.
    """
    again = check_config(merge_stored(run_dir, given, resume))
    changed = [k for k in PLAN_KEYS if again.get(k) != config.get(k)]
    if changed:
        raise ValueError(f"{changed[0]}: the run in {run_dir} was written with "
                         f"{again.get(changed[0])!r} while this search waited; allowed: "
                         "resume it with its own options (resume=True)")
    again["max_memory"] = again["max_memory"] or default_max_bytes()
    return again
