"""Fixtures shared by several test files of tests/downstream: the factory of tiny Titans
forecasters and a state-dict copy (test_titans_*.py), the tiny random GPT-2, the ETTh1 rows and
the factory of tiny Time-LLM models (test_timellm_model.py, test_timellm_training.py), and GRA-M's
small memory bank with the one-line ValueError check (test_timellm_gram_*.py). A fixture that
needs a test setup reads it from the requesting test module (Titans: ``CFG``; Time-LLM: ``L``,
``H``, ``PATCH``, ``STRIDE``, ``DESC``; GRA-M: ``BOUNDS``, ``SEQ``, ``HOR``), so each module's
constants are the only ones its fixtures use. The project's modules are imported inside the
fixtures, so that the other test files of this folder do not load them."""
from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

if TYPE_CHECKING:
    from downstream.timellm import LanguageModel
    from downstream.timellm.gram import MemoryBank


# ---------------------------------------------------------------------------------- Titans

@pytest.fixture(scope="module")
def titans_model(request):
    """A factory of seeded Titans forecasters with the requesting module's ``CFG``:
    ``titans_model(n_vars, horizon, n_inputs=None, seed=0, cls=TitansForecaster,
    **overrides)`` seeds torch with ``seed`` and returns ``cls(n_vars, horizon, n_inputs,
    CFG with the overrides)``."""
    from downstream.titans import TitansForecaster

    cfg = request.module.CFG

    def make(n_vars: int, horizon: int, n_inputs: int | None = None, seed: int = 0,
             cls=TitansForecaster, **overrides) -> TitansForecaster:
        torch.manual_seed(seed)
        return cls(n_vars, horizon, n_inputs, dataclasses.replace(cfg, **overrides))

    return make


@pytest.fixture(scope="session")
def state_copy():
    """A function: a module -> a detached copy of its state dict (to compare weights later)."""
    def copy_state(model: torch.nn.Module) -> dict:
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    return copy_state


# -------------------------------------------------------------------------------- Time-LLM

@contextlib.contextmanager
def _one_thread():
    """One torch thread in module fixtures, which are set up before the function-scoped
    ``one_torch_thread`` (two threads on the loaded 2-core machine: fits ~5x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def one_thread_context():
    """The context manager ``_one_thread`` above, for the module fixtures of the test files."""
    return _one_thread


@pytest.fixture(scope="module")
def llm_dir(request, tmp_path_factory) -> Path:
    """A tiny randomly initialised GPT-2 (width 32, one block, two heads) written by
    ``build_tiny_llm`` with the requesting module's ``DESC``."""
    from downstream.timellm import build_tiny_llm

    with _one_thread():
        return build_tiny_llm(tmp_path_factory.mktemp("tiny_llm"), request.module.DESC, width=32,
                              layers=1, heads=2)


@pytest.fixture(scope="module")
def llm(llm_dir) -> LanguageModel:
    """Shared by the float32 models (frozen: no test changes it; checked in
    test_timellm_model.py)."""
    from downstream.timellm import LanguageModel

    return LanguageModel(llm_dir)


@pytest.fixture(scope="module")
def ett(etth1) -> np.ndarray:
    """ETTh1 rows [0, 200), the last two variables (LULL, OT)."""
    return np.ascontiguousarray(etth1[:200, -2:])


@pytest.fixture(scope="module")
def timellm_model(request):
    """A factory of seeded tiny Time-LLM models with the requesting module's ``L``, ``H``,
    ``PATCH``, ``STRIDE`` and ``DESC``: ``timellm_model(llm, seed=0, horizon=H, **kwargs)``
    (kwargs replace the small defaults: d_model 8, 2 heads, d_keys 4, d_ff 16, 20 prototypes)."""
    from downstream.timellm import TimeLLM

    m = request.module

    def make(llm, seed: int = 0, horizon: int = m.H, **kwargs) -> TimeLLM:
        torch.manual_seed(seed)
        kwargs = {"d_model": 8, "heads": 2, "d_keys": 4, "d_ff": 16, "prototypes": 20,
                  "patch_len": m.PATCH, "stride": m.STRIDE, **kwargs}
        return TimeLLM(m.L, horizon, llm, m.DESC, **kwargs)

    return make


# ----------------------------------------------------------------------------------- GRA-M

@pytest.fixture(scope="module")
def small_bank(request, etth1) -> MemoryBank:
    """A GRA-M memory bank of 200 items on ETTh1 with the requesting module's ``BOUNDS``,
    ``SEQ`` and ``HOR``."""
    from downstream.timellm.gram import MemoryBank

    m = request.module
    return MemoryBank.build(etth1, m.BOUNDS, m.SEQ, m.HOR, max_items=200, seed=0)


@pytest.fixture(scope="session")
def one_line_error():
    """A check: the ValueError caught in ``excinfo`` is one line, starts with ``name:`` and
    says what is allowed."""
    def check(excinfo, name: str) -> None:
        text = str(excinfo.value)
        assert "\n" not in text and text.startswith(f"{name}:") and "allowed" in text, text

    return check
