"""Named datasets and CSV files as raw multivariate series with dates and standard splits.

Data directory: ``--data-dir`` (the ``data_dir`` argument), else the environment variable
``CTSNAS_DATA_DIR``, else the first of ``./datasets`` and ``../shared/datasets`` (relative to
the working directory) that exists. ``co2`` (weekly Mauna Loa CO2, 1958-2001, shipped inside
statsmodels) needs no file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ENV_VAR = "CTSNAS_DATA_DIR"
DEFAULT_DIRS = ("datasets", "../shared/datasets")

#: name -> file (relative to the data directory), default target and split scheme.
#: ``ett_hour`` / ``ett_minute``: TS2Vec/Informer 12/4/4 months; ``ratio``: 70/10/20.
REGISTRY = {
    "ETTh1": {"file": "ETT-small/ETTh1.csv", "target": "OT", "split": "ett_hour"},
    "ETTh2": {"file": "ETT-small/ETTh2.csv", "target": "OT", "split": "ett_hour"},
    "ETTm1": {"file": "ETT-small/ETTm1.csv", "target": "OT", "split": "ett_minute"},
    "ETTm2": {"file": "ETT-small/ETTm2.csv", "target": "OT", "split": "ett_minute"},
    "weather": {"file": "weather/weather.csv", "target": "OT", "split": "ratio"},
    "exchange_rate": {"file": "exchange_rate/exchange_rate.csv", "target": "OT", "split": "ratio"},
    "illness": {"file": "illness/national_illness.csv", "target": "OT", "split": "ratio"},
    "los_loop": {"file": "los_loop/los_speed.csv", "target": None, "split": "ratio",
                 "adjacency": "los_loop/los_adj.csv"},
    "co2": {"file": None, "target": "co2", "split": "ratio"},
}
DATE_NAMES = ("date", "datetime", "time", "timestamp")


@dataclass
class SeriesData:
    """A raw multivariate series.

    Attributes:
        name: registry name or file stem.
        values: (T, N) float64, NaN for missing values.
        columns: the N variable names.
        dates: DatetimeIndex of length T, or None when the file has no date column.
        default_target: the column forecast by default in the univariate setting, or None.
        split: split scheme name (see :mod:`downstream.splits`).
        source: where it was read from.
        adjacency: (N, N) graph for correlated series (los_loop), else None.
    """

    name: str
    values: np.ndarray
    columns: list
    dates: pd.DatetimeIndex | None
    default_target: str | None
    split: str
    source: str
    adjacency: np.ndarray | None = field(default=None, repr=False)


def candidate_dirs(data_dir=None) -> list:
    """Directories searched for dataset files, in order."""
    if data_dir is not None:
        return [Path(data_dir)]
    if os.environ.get(ENV_VAR):
        return [Path(os.environ[ENV_VAR])]
    return [Path(d) for d in DEFAULT_DIRS]


def resolve_data_dir(data_dir=None) -> Path | None:
    """The first existing candidate directory, or None."""
    return next((d for d in candidate_dirs(data_dir) if d.is_dir()), None)


def list_datasets(data_dir=None) -> list:
    """[{name, available, path}] for every registered dataset, plus where it looked."""
    found = resolve_data_dir(data_dir)
    rows = []
    for name, entry in REGISTRY.items():
        if entry["file"] is None:
            rows.append({"name": name, "available": True, "path": "statsmodels (embedded)"})
            continue
        path = (found or candidate_dirs(data_dir)[0]) / entry["file"]
        rows.append({"name": name, "available": path.is_file(), "path": str(path)})
    return rows


def _where(data_dir) -> str:
    dirs = ", ".join(str(d.resolve()) for d in candidate_dirs(data_dir))
    return (f"looked in: {dirs}; point elsewhere with --data-dir DIR or the environment "
            f"variable {ENV_VAR}")


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        try:
            return pd.read_csv(path)
        except UnicodeDecodeError:
            return pd.read_csv(path, encoding="latin1")
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise ValueError(f"data: cannot read {path} as CSV ({exc})") from None


def _split_dates(df: pd.DataFrame) -> tuple:
    """Detect the date column: one named like a date (date, datetime, time, timestamp), else
    the first text column of which over 90% parses as dates. -> (DatetimeIndex or None, rest)."""
    named = [c for c in df.columns if str(c).strip().lower() in DATE_NAMES]
    text = [c for c in df.columns if c not in named and (pd.api.types.is_string_dtype(df[c])
                                                         or df[c].dtype == object)]
    for col in named + text:
        parsed = pd.to_datetime(df[col], errors="coerce", format="mixed")
        if col in named or parsed.notna().mean() > 0.9:
            return pd.DatetimeIndex(parsed), df.drop(columns=col)
    return None, df


def frame_to_series(df: pd.DataFrame, name: str, source: str, default_target, split: str,
                    adjacency=None) -> SeriesData:
    """A data frame (optional date column + numeric columns) -> SeriesData.

    Raises:
        ValueError: no numeric column, or fewer than 2 rows.
    """
    dates, rest = _split_dates(df)
    numeric = rest.select_dtypes("number")
    if numeric.shape[1] == 0:
        raise ValueError(f"data: {source} has no numeric column (columns: {list(df.columns)}); "
                         "allowed: a CSV of an optional date column plus numeric columns")
    if len(numeric) < 2:
        raise ValueError(f"data: {source} has {len(numeric)} rows; allowed: at least 2")
    if default_target is not None and default_target not in numeric.columns:
        default_target = None
    if default_target is None and "OT" in numeric.columns:
        default_target = "OT"
    return SeriesData(name=name, values=numeric.to_numpy(np.float64),
                      columns=[str(c) for c in numeric.columns], dates=dates,
                      default_target=default_target, split=split, source=source,
                      adjacency=adjacency)


def load_co2() -> SeriesData:
    """Weekly Mauna Loa CO2 (ppm) from statsmodels, 2284 weeks with 59 missing (kept as NaN)."""
    from statsmodels.datasets import co2

    df = co2.load_pandas().data
    frame = pd.DataFrame({"date": df.index, "co2": df["co2"].to_numpy()})
    return frame_to_series(frame, "co2", "statsmodels.datasets.co2", "co2", "ratio")


def load(data: str, data_dir=None) -> SeriesData:
    """Load a registered dataset by name, or any CSV file by path.

    Raises:
        ValueError: unknown name that is not a file (lists the names and where it looked),
            registered file missing, unreadable or non-numeric CSV.
    """
    if data == "co2":
        return load_co2()
    if data in REGISTRY:
        entry = REGISTRY[data]
        root = resolve_data_dir(data_dir)
        path = (root or candidate_dirs(data_dir)[0]) / entry["file"]
        if not path.is_file():
            raise ValueError(f"data: {data} not found at {path}; {_where(data_dir)}")
        adjacency = None
        if entry.get("adjacency"):
            adj_path = path.parent.parent / entry["adjacency"]
            adjacency = pd.read_csv(adj_path, header=None).to_numpy(np.float64)
        return frame_to_series(_read_csv(path), data, str(path), entry["target"],
                               entry["split"], adjacency)
    path = Path(data)
    if path.is_file():
        return frame_to_series(_read_csv(path), path.stem, str(path), None, "ratio")
    raise ValueError(f"data: got {data!r}, neither a dataset name nor a file; allowed: "
                     f"{sorted(REGISTRY)} or a CSV path; {_where(data_dir)}")
