"""Shared fixtures: real data from ../shared/datasets (or $CTSNAS_DATA_DIR); tests that need it
skip with a clear reason when the folder is absent, except under CI (the environment variable
``CI`` set, e.g. ``CI=true``), where a missing folder fails the run before any test."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

DATA_DIR = Path(os.environ.get("CTSNAS_DATA_DIR")
                or Path(__file__).resolve().parents[2] / "shared" / "datasets")
ETTH1 = DATA_DIR / "ETT-small" / "ETTh1.csv"

torch.set_num_threads(min(2, os.cpu_count() or 1))


def _in_ci() -> bool:
    """Whether the environment variable CI is set to a true value (CI services set CI=true)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI, stop the run when the datasets folder is missing instead of skipping its tests."""
    if _in_ci() and not ETTH1.is_file():
        raise pytest.UsageError(
            f"datasets folder not found: {DATA_DIR} (no ETT-small/ETTh1.csv); with CI set, tests "
            "fail instead of skipping; set CTSNAS_DATA_DIR to the datasets folder")


@pytest.fixture(scope="session")
def etth1() -> np.ndarray:
    """ETTh1 training rows [0, 8640) as (T, 7), standardised with training statistics."""
    if not ETTH1.is_file():
        pytest.skip(f"ETTh1 not found at {ETTH1}; set CTSNAS_DATA_DIR to the datasets folder")
    values = pd.read_csv(ETTH1).select_dtypes("number").to_numpy(np.float32)[:8640]
    return (values - values.mean(0)) / values.std(0)


@pytest.fixture(scope="session")
def etth1_windows(etth1) -> dict:
    """Real ETTh1 windows: {'multi': (4, 48, 7), 'uni': (4, 48, 1) of OT}."""
    starts = [0, 1000, 3000, 6000]
    multi = np.stack([etth1[s:s + 48] for s in starts])
    return {"multi": multi, "uni": multi[:, :, -1:].copy()}


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real datasets folder; tests skip when it is absent."""
    if not ETTH1.is_file():
        pytest.skip(f"datasets not found at {DATA_DIR}; set CTSNAS_DATA_DIR to the datasets folder")
    return DATA_DIR


@pytest.fixture
def one_torch_thread():
    """Run the test with one torch thread (small online steps), restoring the count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
