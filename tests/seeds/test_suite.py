"""The seed task suite on the real shared datasets."""
from __future__ import annotations

import numpy as np
import pytest

import downstream as ds
from seeds.suite import SLICES, load_slice, slice_id, slices_of, suite


def test_suite_has_24_plus_tasks_over_every_shared_dataset():
    tasks = suite()
    assert len(tasks) >= 24
    assert len({t["task_id"] for t in tasks}) == len(tasks)
    assert {t["dataset"] for t in tasks} >= {"ETTh1", "ETTh2", "ETTm1", "ETTm2", "weather",
                                             "exchange_rate", "illness", "los_loop"}
    # every dataset has several tasks, so leave-one-dataset-out keeps tasks to evaluate on
    counts = {d: sum(t["dataset"] == d for t in tasks) for d in {t["dataset"] for t in tasks}}
    assert min(counts.values()) >= 2
    assert set(slices_of(tasks)) == {slice_id(s) for s in SLICES}


@pytest.mark.parametrize("index", range(len(SLICES)))
def test_every_slice_loads_leak_free_with_room_for_its_horizons(index, data_dir):
    sl = SLICES[index]
    task = load_slice(sl, data_dir)
    start, end = sl["rows"]
    assert task.x.shape[0] == end - start
    ds.check_horizons(task, sl["horizons"], ds.PADDING)
    train = task.splits["train"]
    y_train = task.y[train[0]:train[1]]
    # the scaler is fitted on the slice's training rows only
    np.testing.assert_allclose(np.nanmean(y_train, axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(np.nanstd(y_train, axis=0), 1, atol=1e-3)
    assert task.univariate == sl["univariate"]


def test_bad_slice_rows_and_columns_are_named(data_dir):
    with pytest.raises(ValueError, match="rows: got"):
        load_slice({**SLICES[0], "rows": [0, 10**9]}, data_dir)
    with pytest.raises(ValueError, match="'nope' is not a column"):
        load_slice({**SLICES[0], "columns": ["nope"]}, data_dir)
