"""Dataset registry, CSV loading, task building and their error messages, on real files."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import downstream as ds
from downstream.datasets import list_datasets


@pytest.mark.parametrize("name,rows,cols,target", [
    ("ETTh1", 17420, 7, "OT"), ("ETTm2", 69680, 7, "OT"), ("weather", 52696, 21, "OT"),
    ("exchange_rate", 7588, 8, "OT"), ("illness", 966, 7, "OT"), ("los_loop", 2016, 207, None),
])
def test_registered_datasets_load(data_dir, name, rows, cols, target):
    data = ds.load(name, data_dir)
    assert data.values.shape == (rows, cols) and data.default_target == target
    assert (data.dates is None) == (name == "los_loop")
    if name == "los_loop":
        assert data.adjacency.shape == (207, 207)
    if name == "weather":  # Latin-1 header bytes
        assert any("°" in c or "(" in c for c in data.columns)


def test_registry_entries_hold_only_keys_that_load_reads():
    allowed = {"file", "target", "split", "adjacency"}
    for name, entry in ds.REGISTRY.items():
        assert set(entry) <= allowed, f"{name}: unread keys {sorted(set(entry) - allowed)}"
        assert {"file", "target", "split"} <= set(entry), name


def test_co2_needs_no_file(tmp_path):
    data = ds.load("co2", tmp_path)
    assert data.values.shape == (2284, 1) and np.isnan(data.values).sum() == 59
    task = ds.make_task(data, univariate=True)
    assert task.targets == ["co2"] and task.n_covariates == 7
    assert np.isnan(task.x[:, -1]).sum() == 59  # missing weeks stay NaN for the encoder


def test_list_datasets_says_where_it_looked(tmp_path, data_dir):
    rows = {r["name"]: r for r in list_datasets(tmp_path)}
    assert rows["co2"]["available"] and not rows["ETTh1"]["available"]
    assert str(tmp_path) in rows["ETTh1"]["path"]
    assert all(r["available"] for r in list_datasets(data_dir))


def test_missing_file_names_the_place_and_the_fix(tmp_path):
    with pytest.raises(ValueError, match=r"ETTh1 not found at .*--data-dir DIR.*CTSNAS_DATA_DIR"):
        ds.load("ETTh1", tmp_path)
    with pytest.raises(ValueError, match=r"neither a dataset name nor a file; allowed: \['ETTh1'"):
        ds.load("ETTh9", tmp_path)


def test_any_csv_with_detected_dates(tmp_path, data_dir):
    df = pd.read_csv(data_dir / "ETT-small" / "ETTh2.csv", nrows=3000)
    df = df.rename(columns={"date": "when"})[["HUFL", "when", "OT"]]
    path = tmp_path / "mine.csv"
    df.to_csv(path, index=False)
    data = ds.load(str(path))
    assert data.columns == ["HUFL", "OT"] and data.dates is not None
    assert data.default_target == "OT" and data.name == "mine"
    assert ds.make_task(data, univariate=True).targets == ["OT"]
    assert ds.make_task(data).targets == ["HUFL", "OT"]


def test_unreadable_and_non_numeric_files(tmp_path):
    bad = tmp_path / "words.csv"
    bad.write_text("date,city\n2020-01-01,Paris\n2020-01-02,Rome\n")
    with pytest.raises(ValueError, match="no numeric column"):
        ds.load(str(bad))
    binary = tmp_path / "blob.csv"
    binary.write_bytes(b"\x00\x01\x02" * 10)
    with pytest.raises(ValueError, match="data: "):
        ds.load(str(binary))


def test_unknown_target_lists_the_columns(data_dir):
    with pytest.raises(ValueError, match=r"target: got 'oil'.*allowed: \['HUFL'"):
        ds.make_task(ds.load("ETTh1", data_dir), target="oil")


def test_constant_series_is_refused(tmp_path):
    path = tmp_path / "flat.csv"
    pd.DataFrame({"date": pd.date_range("2020", periods=500, freq="h"), "v": 3.0,
                  "w": np.arange(500.0)}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="column 'v' is constant on the training split"):
        ds.make_task(ds.load(str(path)), univariate=False)


def test_series_too_short_for_lookback_and_horizon(data_dir):
    task = ds.make_task(ds.load("illness", data_dir), univariate=True)
    with pytest.raises(ValueError, match=r"H=96 is too long for the val split of illness"):
        ds.check_horizons(task, [24, 96], 200)
    with pytest.raises(ValueError, match=r"H=500 is too long for the train split"):
        ds.check_horizons(task, [500], 200)


def test_splits_follow_the_literature(data_dir):
    assert ds.split_bounds("ett_hour", 17420) == {"train": (0, 8640), "val": (8640, 11520),
                                                  "test": (11520, 14400)}
    assert ds.split_bounds("ett_minute", 69680)["test"] == (46080, 57600)
    assert ds.split_bounds("ratio", 1000) == {"train": (0, 700), "val": (700, 800),
                                              "test": (800, 1000)}
    with pytest.raises(ValueError, match="need 14400 rows"):
        ds.split_bounds("ett_hour", 10000)


def test_scaler_uses_training_rows_only(data_dir):
    data = ds.load("ETTh1", data_dir)
    base = ds.make_task(data)
    data.values[8640:] = np.random.default_rng(0).normal(50, 9, data.values[8640:].shape)
    changed = ds.make_task(data)
    assert np.array_equal(base.y_mean, changed.y_mean)
    assert np.array_equal(base.y_scale, changed.y_scale)
    assert np.array_equal(base.x[:8640], changed.x[:8640])
    train = data.values[:8640]
    np.testing.assert_allclose(base.y_mean, train.mean(0))
    np.testing.assert_allclose(base.y_scale, train.std(0))
