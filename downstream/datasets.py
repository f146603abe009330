"""Named datasets and CSV files as raw multivariate series with dates and standard splits.

Data directory: ``--data-dir`` (the ``data_dir`` argument), else the environment variable
``CTSNAS_DATA_DIR``, else the first of ``./datasets`` and ``../shared/datasets`` (relative to
the working directory) that exists. ``co2`` (weekly Mauna Loa CO2, 1958-2001, shipped inside
statsmodels) needs no file.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

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
#: Dates a shipped file repeats, accepted there only: weather.csv (Autoformer's form) holds
#: 2020-05-12 06:00 twice with identical values (rows 19043, 19044); kept so its 52,696 rows
#: and the literature's 70/10/20 split stay as published (``dedupe=True`` drops it).
KNOWN_REPEATED_DATES = {"weather": ("2020-05-12 06:00:00",)}


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


def _guess_formats(sample: str) -> list:
    """Candidate formats of a date string: month-first and day-first readings (one when they
    agree). A year-first string is read year-month-day only (ISO 8601; year-day-month is no
    convention)."""
    with warnings.catch_warnings():  # pandas warns when dayfirst disagrees with the guess
        warnings.simplefilter("ignore")
        month_first = guess_datetime_format(sample, dayfirst=False)
        day_first = guess_datetime_format(sample, dayfirst=True)
    if month_first and month_first.startswith("%Y"):
        return [month_first]
    return list(dict.fromkeys(f for f in (month_first, day_first) if f))


def _parse_dates(column: pd.Series, name, date_format, required: bool):
    """Parse a column with ONE format for the whole column (``date_format``, else inferred
    from its first value), never row by row. -> DatetimeIndex (NaT for empty cells), or None
    when ``required`` is False and no format parses over 90% of the column.

    Raises:
        ValueError: (``required``, or over 90% parsed) a value that does not match the format,
            a day-first/month-first ambiguous column, no inferable format.
    """
    if pd.api.types.is_datetime64_any_dtype(column):
        return pd.DatetimeIndex(column)
    if pd.api.types.is_numeric_dtype(column) and not date_format:
        raise ValueError(f"{name}: holds numbers, not dates; allowed: date strings, or pass "
                         "date_format= (e.g. '%Y%m%d') to read the numbers as dates")
    text = column.astype("string").str.strip()
    present = (text.notna() & (text != "")).to_numpy()
    if not present.any():
        if required:
            raise ValueError(f"{name}: every value is empty; allowed: one date per row")
        return None
    first = int(np.argmax(present))
    sample = text.iloc[first]
    formats = [date_format] if date_format else _guess_formats(sample)
    if not formats:
        if required:
            raise ValueError(f"{name}: cannot infer a date format from row {first} {sample!r}; "
                             "pass date_format= (e.g. '%Y-%m-%d %H:%M')")
        return None
    parsed = {f: pd.DatetimeIndex(pd.to_datetime(text, format=f, errors="coerce"))
              for f in formats}
    missed = {f: present & parsed[f].isna() for f in formats}
    best = min(formats, key=lambda f: missed[f].sum())
    if not required and missed[best].sum() >= 0.1 * len(text):
        return None
    if missed[best].any():
        row = int(np.argmax(missed[best]))
        how = "date_format" if date_format else f"the format inferred from row {first} {sample!r}"
        raise ValueError(f"{name}: row {row} {text.iloc[row]!r} does not match {best!r} ({how}); "
                         "fix the row or pass date_format=")
    full = [f for f in formats if not missed[f].any()]
    if len(full) > 1 and not parsed[full[0]].equals(parsed[full[1]]):
        raise ValueError(f"{name}: dates such as {sample!r} read both day-first and month-first "
                         f"(no day above 12); pass date_format={full[1]!r} (day first) or "
                         f"{full[0]!r} (month first)")
    return parsed[best]


def _split_dates(df: pd.DataFrame, date_format=None) -> tuple:
    """Detect the date column: one named like a date (date, datetime, time, timestamp), else
    the first text column of which over 90% parses as dates with one format.
    -> (DatetimeIndex or None, rest, column name or None).

    Raises:
        ValueError: see :func:`_parse_dates`; ``date_format`` given but no date column.
    """
    named = [c for c in df.columns if str(c).strip().lower() in DATE_NAMES]
    if named:
        return _parse_dates(df[named[0]], named[0], date_format, True), \
            df.drop(columns=named[0]), named[0]
    for col in df.columns:
        if pd.api.types.is_string_dtype(df[col]) or df[col].dtype == object:
            dates = _parse_dates(df[col], col, date_format, False)
            if dates is not None:
                return dates, df.drop(columns=col), col
    if date_format:
        raise ValueError(f"date_format: got {date_format!r} but no column parses as dates with "
                         "it; allowed: None for data without a date column")
    return None, df, None


def _row_order(dates: pd.DatetimeIndex, name, sort_dates: bool, dedupe: bool,
               allowed_repeats=()) -> np.ndarray:
    """Rows to keep, in order: all of them (dates strictly increasing), or sorted (stable) with
    ``sort_dates``, or without later repeats of a date (the first kept) with ``dedupe``.
    Rows are numbered from 0 (the first data row after the header).

    Raises:
        ValueError: the first two rows that are not increasing or that repeat a date (not
            in ``allowed_repeats``), naming the fix; a missing date with sort_dates/dedupe.
    """
    stamps = dates.asi8
    order = np.arange(len(dates))
    missing = dates.isna()
    if (sort_dates or dedupe) and missing.any():
        flag = "sort_dates" if sort_dates else "dedupe"
        raise ValueError(f"{name}: row {int(np.argmax(missing))} has no date; {flag}=True "
                         "needs every row dated")
    if sort_dates:
        order = np.argsort(stamps, kind="stable")
    if dedupe:
        order = order[np.sort(np.unique(stamps[order], return_index=True)[1])]
    rows = order[~missing[order]]
    step = np.diff(stamps[rows])
    allowed = pd.DatetimeIndex(list(allowed_repeats)).as_unit(dates.unit).asi8
    bad = (step < 0) | ((step == 0) & ~np.isin(stamps[rows][1:], allowed))
    if bad.any():
        i = int(np.argmax(bad))
        a, b = int(rows[i]), int(rows[i + 1])
        if step[i] < 0:
            raise ValueError(f"{name}: rows {a} and {b} are not increasing ({dates[a]} then "
                             f"{dates[b]}); sort them on purpose with sort_dates=True")
        raise ValueError(f"{name}: rows {a} and {b} repeat the date {dates[a]}; drop the "
                         "repeats on purpose with dedupe=True (keeps the first)")
    return order


def check_finite(values: np.ndarray, columns: list, source: str) -> None:
    """Refuse +inf / -inf (NaN stays the missing-value marker). values (T, N).

    Raises:
        ValueError: naming the first infinite value's column and row (rows from 0).
    """
    bad = np.isinf(values)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"data: column {columns[col]!r} row {row} of {source} is "
                         f"{values[row, col]}; allowed: finite numbers (leave the cell empty "
                         "or NaN for a missing value)")


def _check_flags(sort_dates, dedupe, date_format) -> None:
    for flag, value in (("sort_dates", sort_dates), ("dedupe", dedupe)):
        if not isinstance(value, bool):
            raise ValueError(f"{flag}: got {value!r}; allowed: True or False")
    if date_format is not None and (not isinstance(date_format, str) or (
            "%" not in date_format and date_format != "ISO8601")):
        raise ValueError(f"date_format: got {date_format!r}; allowed: None, 'ISO8601' or a "
                         "strftime format such as '%d/%m/%Y %H:%M'")


def frame_to_series(df: pd.DataFrame, name: str, source: str, default_target, split: str,
                    adjacency=None, *, sort_dates: bool = False, dedupe: bool = False,
                    date_format: str | None = None, allowed_repeats=()) -> SeriesData:
    """A data frame (optional date column + numeric columns) -> SeriesData, refused rather
    than misread: dates parsed with one format for the whole column (``date_format``, else
    inferred; a day-first/month-first ambiguous column is refused) and strictly increasing
    (``sort_dates=True`` sorts the rows, ``dedupe=True`` drops later rows repeating a date;
    ``allowed_repeats``: dates a shipped file repeats on purpose), values finite or NaN.
    Rows in messages are numbered from 0, the first data row after the header.

    Raises:
        ValueError: no numeric column, fewer than 2 rows, a date problem above (naming the
            rows and the fix), +/-inf (naming column and row), a bad flag value.
    """
    _check_flags(sort_dates, dedupe, date_format)
    dates, rest, date_col = _split_dates(df, date_format)
    numeric = rest.select_dtypes("number")
    if numeric.shape[1] == 0:
        raise ValueError(f"data: {source} has no numeric column (columns: {list(df.columns)}); "
                         "allowed: a CSV of an optional date column plus numeric columns")
    values, columns = numeric.to_numpy(np.float64), [str(c) for c in numeric.columns]
    check_finite(values, columns, source)
    if dates is None and (sort_dates or dedupe):
        flag = "sort_dates" if sort_dates else "dedupe"
        raise ValueError(f"{flag}: got True but {source} has no date column; allowed: False")
    if dates is not None:
        order = _row_order(dates, date_col, sort_dates, dedupe, allowed_repeats)
        if not np.array_equal(order, np.arange(len(dates))):
            dates, values = dates[order], values[order]
    if len(values) < 2:
        raise ValueError(f"data: {source} has {len(values)} rows; allowed: at least 2")
    if default_target is not None and default_target not in columns:
        default_target = None
    if default_target is None and "OT" in columns:
        default_target = "OT"
    return SeriesData(name=name, values=values, columns=columns, dates=dates,
                      default_target=default_target, split=split, source=source,
                      adjacency=adjacency)


def load_co2(**options) -> SeriesData:
    """Weekly Mauna Loa CO2 (ppm) from statsmodels, 2284 weeks with 59 missing (kept as NaN).
    ``options``: as :func:`load`."""
    from statsmodels.datasets import co2

    df = co2.load_pandas().data
    frame = pd.DataFrame({"date": df.index, "co2": df["co2"].to_numpy()})
    return frame_to_series(frame, "co2", "statsmodels.datasets.co2", "co2", "ratio", **options)


def load(data: str, data_dir=None, *, sort_dates: bool = False, dedupe: bool = False,
         date_format: str | None = None) -> SeriesData:
    """Load a registered dataset by name, or any CSV file by path.

    Args:
        sort_dates: sort rows by date (stable) instead of refusing unsorted dates.
        dedupe: drop rows repeating an earlier row's date (the first kept) instead of
            refusing them.
        date_format: strftime format of the date column (e.g. ``'%d/%m/%Y %H:%M'``), needed
            when day-first and month-first readings both fit; default: inferred from the
            column's first value and applied to the whole column.

    Raises:
        ValueError: unknown name that is not a file (lists the names and where it looked),
            registered file missing, unreadable or non-numeric CSV, dates not strictly
            increasing, unparseable or ambiguous dates, +/-inf values (see
            :func:`frame_to_series`).
    """
    options = {"sort_dates": sort_dates, "dedupe": dedupe, "date_format": date_format}
    if data == "co2":
        return load_co2(**options)
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
                               entry["split"], adjacency,
                               allowed_repeats=KNOWN_REPEATED_DATES.get(data, ()), **options)
    path = Path(data)
    if path.is_file():
        return frame_to_series(_read_csv(path), path.stem, str(path), None, "ratio", **options)
    raise ValueError(f"data: got {data!r}, neither a dataset name nor a file; allowed: "
                     f"{sorted(REGISTRY)} or a CSV path; {_where(data_dir)}")
