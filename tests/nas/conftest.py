"""Fixtures of the ``nas`` tests: a short real series as a CSV file."""
from __future__ import annotations

import pandas as pd
import pytest

import downstream as ds


@pytest.fixture(scope="module")
def co2_csv(tmp_path_factory):
    """The first 340 weeks of the embedded Mauna Loa CO2 series as a CSV (date, co2), missing
    weeks interpolated."""
    series = ds.load("co2")
    frame = pd.DataFrame({"date": series.dates[:340], "co2": series.values[:340, 0]})
    frame["co2"] = frame["co2"].interpolate(limit_direction="both")
    path = tmp_path_factory.mktemp("data") / "co2_340.csv"
    frame.to_csv(path, index=False)
    return path
