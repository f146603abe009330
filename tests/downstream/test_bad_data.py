"""Data refused instead of misread (issue 14, item 2): dates strictly increasing and unique
(sort_dates / dedupe fix on purpose), one date format per column (ambiguous day-first /
month-first refused, date_format accepted), +/-inf refused naming column and row, univariate
without a target refused; every shipped dataset still loads exactly as before."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

import downstream as ds


def _csv(tmp_path, dates, values=None, name="data.csv", **extra):
    n = len(dates)
    values = np.arange(n, dtype=float) if values is None else values
    path = tmp_path / name
    pd.DataFrame({"date": dates, "OT": values, **extra}).to_csv(path, index=False)
    return str(path)


HOURS = [f"2020-01-01 {h:02d}:00" for h in range(24)]


def test_unsorted_dates_are_refused_naming_the_rows(tmp_path):
    dates = HOURS[:14] + [HOURS[15], HOURS[14]] + HOURS[16:]
    path = _csv(tmp_path, dates)
    with pytest.raises(ValueError, match=r"^date: rows 14 and 15 are not increasing "
                       r"\(2020-01-01 15:00:00 then 2020-01-01 14:00:00\); sort them on "
                       r"purpose with sort_dates=True$"):
        ds.load(path)
    data = ds.load(path, sort_dates=True)
    assert list(data.dates) == list(pd.to_datetime(HOURS))
    assert data.values[14:16, 0].tolist() == [15.0, 14.0]  # each value moved with its date


def test_repeated_dates_are_refused_and_dedupe_keeps_the_first(tmp_path):
    dates = HOURS[:6] + [HOURS[5]] + HOURS[6:]
    path = _csv(tmp_path, dates)
    with pytest.raises(ValueError, match=r"^date: rows 5 and 6 repeat the date 2020-01-01 "
                       r"05:00:00; drop the repeats on purpose with dedupe=True"):
        ds.load(path)
    data = ds.load(path, dedupe=True)
    assert len(data.values) == 24 and data.values[:7, 0].tolist() == [0, 1, 2, 3, 4, 5, 7]
    assert data.dates.is_monotonic_increasing and data.dates.is_unique


def test_sort_and_dedupe_together(tmp_path):
    dates = [HOURS[3], HOURS[1], HOURS[3], HOURS[0], HOURS[2], HOURS[1]]
    with pytest.raises(ValueError, match="not increasing"):
        ds.load(_csv(tmp_path, dates), dedupe=True)
    with pytest.raises(ValueError, match=r"rows 1 and 5 repeat the date"):
        ds.load(_csv(tmp_path, dates), sort_dates=True)
    data = ds.load(_csv(tmp_path, dates), sort_dates=True, dedupe=True)
    assert data.values[:, 0].tolist() == [3, 1, 4, 0]  # the first row of each date, sorted


def test_the_fixes_need_a_date_column_and_bool_values(tmp_path):
    path = tmp_path / "plain.csv"
    pd.DataFrame({"a": np.arange(5.0), "b": np.ones(5)}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"^sort_dates: got True but .* has no date column"):
        ds.load(str(path), sort_dates=True)
    with pytest.raises(ValueError, match=r"^dedupe: got 'yes'; allowed: True or False$"):
        ds.load(str(path), dedupe="yes")
    with pytest.raises(ValueError, match=r"^date_format: got '%Y-%m-%d' but no column parses"):
        ds.load(str(path), date_format="%Y-%m-%d")
    with pytest.raises(ValueError, match=r"^date_format: got 'dd/mm'; allowed: None"):
        ds.load(str(path), date_format="dd/mm")


def test_ambiguous_day_first_column_is_refused_with_the_date_format_hint(tmp_path):
    stamps = pd.date_range("2020-01-01", periods=12, freq="D")  # days 1-12 of January
    path = _csv(tmp_path, stamps.strftime("%d/%m/%Y 14:00"))
    with pytest.raises(ValueError, match=r"^date: dates such as '01/01/2020 14:00' read both "
                       r"day-first and month-first \(no day above 12\); pass "
                       r"date_format='%d/%m/%Y %H:%M' \(day first\) or '%m/%d/%Y %H:%M'"):
        ds.load(path)
    data = ds.load(path, date_format="%d/%m/%Y %H:%M")
    assert list(data.dates) == list(stamps + pd.Timedelta(hours=14))
    month_first = ds.load(path, date_format="%m/%d/%Y %H:%M")
    assert month_first.dates[1] == pd.Timestamp("2020-02-01 14:00")


def test_day_first_dates_are_read_with_one_format_for_the_whole_column(tmp_path):
    """Row by row, '05/01/2020' read as May 1 while '13/01/2020' is January 13: a day-first
    column is read day-first throughout once any day exceeds 12."""
    stamps = pd.date_range("2020-01-05", "2020-03-01", freq="D")
    data = ds.load(_csv(tmp_path, stamps.strftime("%d/%m/%Y")))
    assert list(data.dates) == list(stamps)


def test_year_first_dates_are_never_called_ambiguous(tmp_path):
    stamps = pd.date_range("2020-01-01", periods=200, freq="h")  # days 1-9 only
    data = ds.load(_csv(tmp_path, stamps.strftime("%Y-%m-%d %H:%M:%S")))
    assert list(data.dates) == list(stamps)


def test_a_row_off_the_column_format_is_refused(tmp_path):
    dates = [d for d in HOURS]
    dates[9] = "2020-01-01T09:00"
    with pytest.raises(ValueError, match=r"^date: row 9 '2020-01-01T09:00' does not match "
                       r"'%Y-%m-%d %H:%M' \(the format inferred from row 0"):
        ds.load(_csv(tmp_path, dates))
    with pytest.raises(ValueError, match=r"^date: row 0 '2020-01-01 00:00' does not match "
                       r"'%d/%m/%Y' \(date_format\)"):
        ds.load(_csv(tmp_path, HOURS), date_format="%d/%m/%Y")


def test_numbers_in_a_date_column_need_a_format(tmp_path):
    path = tmp_path / "days.csv"
    pd.DataFrame({"time": [20200101, 20200102, 20200103], "v": [1.0, 2.0, 4.0]}).to_csv(
        path, index=False)
    with pytest.raises(ValueError, match=r"^time: holds numbers, not dates"):
        ds.load(str(path))
    data = ds.load(str(path), date_format="%Y%m%d")
    assert data.dates[2] == pd.Timestamp("2020-01-03") and data.columns == ["v"]


@pytest.mark.parametrize("cell,shown", [("inf", "inf"), ("-inf", "-inf"), ("1e999", "inf")])
def test_infinite_values_are_refused_naming_column_and_row(tmp_path, cell, shown):
    path = tmp_path / "inf.csv"
    lines = ["date,HUFL,OT"] + [f"{h},{i}.5,{i}" for i, h in enumerate(HOURS)]
    lines[8] = f"{HOURS[7]},7.5,{cell}"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"^data: column 'OT' row 7 of .*inf.csv is {shown}; "
                       r"allowed: finite numbers \(leave the cell empty or NaN"):
        ds.load(str(path))


def test_nan_stays_the_missing_value_marker(tmp_path):
    path = tmp_path / "gaps.csv"
    lines = ["date,HUFL,OT"] + [f"{h},{i}.5,{i}" for i, h in enumerate(HOURS)]
    lines[3], lines[5] = f"{HOURS[2]},2.5,", f"{HOURS[4]},NaN,4"
    path.write_text("\n".join(lines) + "\n")
    data = ds.load(str(path))
    assert np.isnan(data.values).sum() == 2 and np.isnan(data.values[2, 1])


def test_make_task_refuses_infinite_values_it_is_given(data_dir):
    data = ds.load("illness", data_dir)
    data.values[40, 3] = -np.inf
    with pytest.raises(ValueError, match=r"^data: column 'AGE 5-24' row 40 of illness is -inf"):
        ds.make_task(data)
    ds.make_task(data, target="OT", univariate=True)  # the column is not an input here


def test_univariate_needs_a_target_to_forecast(tmp_path):
    path = tmp_path / "pair.csv"
    frame = pd.DataFrame({"date": pd.date_range("2020", periods=300, freq="h"),
                          "a": np.sin(np.arange(300.0)), "b": np.cos(np.arange(300.0))})
    frame.to_csv(path, index=False)
    data = ds.load(str(path))
    with pytest.raises(ValueError, match=r"^univariate: got True but pair has 2 columns, no "
                       r"'OT' column and no default target; allowed: name the column to "
                       r"forecast with target=, one of \['a', 'b'\]$"):
        ds.make_task(data, univariate=True)
    task = ds.make_task(data, target="b", univariate=True)
    assert task.inputs == task.targets == ["b"] and task.univariate
    assert ds.make_task(data).targets == ["a", "b"]  # multivariate: all columns, as before
    frame[["date", "a"]].to_csv(path, index=False)
    assert ds.make_task(ds.load(str(path)), univariate=True).targets == ["a"]


def test_univariate_los_loop_without_target_is_refused(data_dir):
    data = ds.load("los_loop", data_dir)
    with pytest.raises(ValueError, match=r"^univariate: got True but los_loop has 207 columns.*"
                       r"one of \['773869', .*'\.\.\.'\]$"):
        ds.make_task(data, univariate=True)


# (name, shape, first two values of row 0, sha256[:16] of the float64 values, of the dates in
# seconds, first date): computed before the checks of issue 14 were added.
SHIPPED = [
    ("ETTh1", (17420, 7), [5.827000141143799, 2.009000062942505], "56acd88bf17b05aa",
     "34d26064046c6799", "2016-07-01 00:00:00"),
    ("ETTh2", (17420, 7), [41.13000106811523, 12.480999946594238], "951ba216246ff1b7",
     "34d26064046c6799", "2016-07-01 00:00:00"),
    ("ETTm1", (69680, 7), [5.827000141143799, 2.009000062942505], "7a68ab074fe48806",
     "5860ef963e24dfea", "2016-07-01 00:00:00"),
    ("ETTm2", (69680, 7), [41.13000106811523, 12.480999946594238], "de23c4bdad2642e5",
     "5860ef963e24dfea", "2016-07-01 00:00:00"),
    ("weather", (52696, 21), [1008.89, 0.71], "cfa48720051e4853", "8abf10dfbe30e59c",
     "2020-01-01 00:10:00"),
    ("exchange_rate", (7588, 8), [0.7855, 1.611], "405c3ce30209849b", "25c6e13839366fe6",
     "1990-01-01 00:00:00"),
    ("illness", (966, 7), [1.22262, 1.16668], "63deaaf75b70a9fd", "a53aa61dbcb8cd81",
     "2002-01-01 00:00:00"),
    ("los_loop", (2016, 207), [64.375, 67.625], "aa5479b18b634a4a", None, None),
    ("co2", (2284, 1), [316.1], "ee5afa98318c2069", "35e9c1c173515931", "1958-03-29 00:00:00"),
]


@pytest.mark.parametrize("name,shape,first,values_sha,dates_sha,first_date", SHIPPED,
                         ids=[s[0] for s in SHIPPED])
def test_shipped_datasets_load_unchanged(data_dir, name, shape, first, values_sha, dates_sha,
                                         first_date):
    assert set(ds.REGISTRY) == {s[0] for s in SHIPPED}
    data = ds.load(name, data_dir)
    assert data.values.shape == shape and data.values[0, :2].tolist() == first
    assert hashlib.sha256(data.values.astype("<f8").tobytes()).hexdigest()[:16] == values_sha
    if dates_sha is None:
        assert data.dates is None
    else:
        stamps = data.dates.as_unit("s").asi8.astype("<i8").tobytes()
        assert hashlib.sha256(stamps).hexdigest()[:16] == dates_sha
        assert str(data.dates[0]) == first_date


def test_the_one_repeated_date_of_weather_is_known_and_dedupe_drops_it(data_dir):
    data = ds.load("weather", data_dir, dedupe=True)
    assert data.values.shape == (52695, 21) and data.dates.is_unique
    assert ds.load("exchange_rate", data_dir, sort_dates=True, dedupe=True).values.shape == (
        7588, 8)
