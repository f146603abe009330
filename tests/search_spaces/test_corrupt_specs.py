"""Corrupted specs: thousands of invalid specs, generated deterministically from the ts2vec
preset and sampled valid specs, must each make ``validate`` (and ``canonical``, ``to_json``,
``spec_hash``, ``mutate``) raise exactly ``ValueError`` with a message of the form
``"<path>: got <value>; allowed: <allowed>"`` naming where the problem is.

The cases are built in one pass and checked in a loop (not as thousands of parametrised ids);
a failure lists the offending case descriptions."""
from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pytest

from search_spaces import canonical, mutate, preset, spec_hash, to_json, validate
from search_spaces import spec as S


def _load_generator():
    """The case generator beside this file (tests are not a package: load it by path)."""
    spec = importlib.util.spec_from_file_location("ctsnas_corrupt_cases",
                                                  Path(__file__).with_name("corrupt_cases.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


_gen = _load_generator()
CATEGORIES, Case, build_cases = _gen.CATEGORIES, _gen.Case, _gen.build_cases
leaf_paths, _wrong_types = _gen.leaf_paths, _gen._wrong_types
CASES, BASES = build_cases()

def _check(case: Case) -> str | None:
    """None when the case is rejected as specified, else a description of what went wrong."""
    try:
        validate(case.spec)
    except ValueError as exc:
        msg = str(exc)
    except Exception as exc:  # noqa: BLE001 - any other type is a failure
        return f"{case.desc}: validate raised {type(exc).__name__}: {exc}"
    else:
        return f"{case.desc}: validate accepted it"
    problems = []
    if "got" not in msg or "allowed" not in msg:
        problems.append("no 'got'/'allowed'")
    if case.cell and case.cell not in msg:
        problems.append(f"cell {case.cell!r} not named")
    if case.path:
        if case.exact and not msg.startswith(case.path + ": got "):
            problems.append(f"does not start with {case.path + ': got '!r}")
        if not case.exact and not (msg.startswith(case.path) and msg[len(case.path)] in ".["):
            problems.append(f"path does not start with {case.path!r} + '.' or '['")
    if case.check_value and repr(case.value) not in msg:
        problems.append(f"value {case.value!r} not shown")
    if case.also and case.also not in msg:
        problems.append(f"{case.also!r} not in message")
    for fn in (canonical, to_json, spec_hash, lambda s: mutate(s, 0)):
        try:
            fn(case.spec)
        except ValueError as exc:
            if str(exc) != msg:
                problems.append(f"{getattr(fn, '__name__', 'mutate')} message differs: {exc}")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{getattr(fn, '__name__', 'mutate')} raised {type(exc).__name__}")
        else:
            problems.append(f"{getattr(fn, '__name__', 'mutate')} accepted it")
    if problems:
        return f"{case.desc}: {'; '.join(problems)} -- message: {msg[:300]}"
    return None


def test_case_generation_is_deterministic_and_complete():
    counts = Counter(c.category for c in CASES)
    assert len(CASES) >= 1000, len(CASES)
    missing = [c for c in CATEGORIES if counts[c] == 0]
    assert not missing, missing
    assert all(counts[c] >= 5 for c in CATEGORIES), counts
    again, _ = build_cases()
    assert [c.desc for c in again] == [c.desc for c in CASES]
    assert len({c.desc for c in CASES}) > 0.9 * len(CASES)
    # Generating the cases did not touch the base specs, which are all valid.
    for (name, base), snapshot in BASES:
        assert base == snapshot, name
        assert validate(base) is base
    assert {b["Encoder"]["steps"] for (_, b), _ in BASES} == set(S.ENCODER_STEPS)
    # Every leaf of the preset got every wrong type.
    ts2vec_leaf = {c.desc for c in CASES if c.category == "wrong_type_leaf"
                   and c.desc.startswith("[wrong_type_leaf] ts2vec:")}
    assert len(ts2vec_leaf) == sum(len(list(_wrong_types(p)))
                                   for p in leaf_paths(preset("ts2vec")))


def test_every_corrupted_spec_is_rejected_with_a_path_message():
    failures = [f for f in map(_check, CASES) if f]
    assert not failures, f"{len(failures)} of {len(CASES)} cases failed:\n" + "\n".join(failures[:40])


def test_rejected_specs_are_left_unchanged():
    for case in CASES[::25]:
        before = repr(case.spec)
        for fn in (validate, canonical, spec_hash):
            with pytest.raises(ValueError):
                fn(case.spec)
        assert repr(case.spec) == before, case.desc


def test_float_version_is_rejected():
    spec = preset("ts2vec")
    spec["version"] = 1.0
    with pytest.raises(ValueError, match="version: got 1.0"):
        validate(spec)


@pytest.mark.parametrize("where", ["version", "temperature", "edge_source"])
def test_int_beyond_str_limit_gets_a_path_message(where):
    spec = preset("ts2vec")
    big = 10 ** 5000
    if where == "version":
        spec["version"] = big
    elif where == "temperature":
        spec["LossCell"]["temperature"] = big
    else:
        spec["Encoder"]["cell"][0][0] = big
    with pytest.raises(ValueError) as info:
        validate(spec)
    assert "got" in str(info.value) and "allowed" in str(info.value)
