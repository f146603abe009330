"""GRA-M's memory bank (``MemoryBank`` and ``window_stats`` of downstream/timellm/gram.py) on
real ETTh1 rows with training bounds (1000, 6000) (rows [0, 1000) and [6000, 8640) stand for
validation/test): every pair's window and future lie inside the bounds and nothing outside them
reaches the bank, the stored values are the data's rows, instance-normalised with the window's
statistics, the admissible range is used up to its edges, ``max_items`` and the seeded
stratified subsample; save/load bit for bit, ``check_bounds`` and ``load_or_build``; one-line
ValueErrors naming the argument; ``window_stats`` against numpy.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from downstream.timellm.gram import MemoryBank, window_stats

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SEQ, HOR = 48, 12
BOUNDS = (1000, 6000)


# --- MemoryBank ---------------------------------------------------------------------------------

def test_bank_pairs_lie_inside_the_training_rows_and_hold_the_data(etth1):
    bank = MemoryBank.build(etth1, BOUNDS, SEQ, HOR, max_items=10**6)
    start, end = BOUNDS
    n_t = end - start - SEQ - HOR + 1
    assert len(bank) == n_t * etth1.shape[1] and bank.bounds == BOUNDS
    rows, var = bank.rows.numpy(), bank.variables.numpy()
    assert (rows - SEQ >= start).all() and (rows + HOR <= end).all()
    assert rows.min() == start + SEQ and rows.max() == end - HOR  # the edges are used
    assert len({(int(r), int(v)) for r, v in zip(rows, var)}) == len(bank)
    for i in np.random.default_rng(0).choice(len(bank), 300, replace=False):
        t, v, m, s = rows[i], var[i], float(bank.mean[i]), float(bank.std[i])
        window, future = etth1[t - SEQ:t, v], etth1[t:t + HOR, v]
        assert m == pytest.approx(window.mean(), abs=1e-5)
        assert s == pytest.approx(np.sqrt(window.var() + 1e-5), rel=1e-5)
        np.testing.assert_allclose(bank.windows[i].numpy() * s + m, window, atol=1e-5)
        np.testing.assert_allclose(bank.futures[i].numpy() * s + m, future, atol=1e-5)
    # nothing from outside the bounds: rewriting those rows leaves the bank bit-identical
    poisoned = etth1.copy()
    poisoned[:start], poisoned[end:] = 1e6, -1e6
    again = MemoryBank.build(poisoned, BOUNDS, SEQ, HOR, max_items=10**6)
    assert torch.equal(again.windows, bank.windows) and torch.equal(again.futures, bank.futures)


def test_bank_windows_are_instance_normalised(small_bank):
    assert torch.allclose(small_bank.windows.mean(1), torch.zeros(len(small_bank)), atol=1e-5)
    var = small_bank.windows.var(1, unbiased=False)
    expected = small_bank.std**2 - 1e-5
    assert torch.allclose(var * small_bank.std**2, expected, rtol=1e-4, atol=1e-6)
    assert small_bank.windows.dtype == small_bank.futures.dtype == torch.float32


def test_max_items_and_seeded_stratified_subsample(etth1):
    bank = MemoryBank.build(etth1, BOUNDS, SEQ, HOR, max_items=500, seed=3)
    assert len(bank) == 500
    assert len({(int(r), int(v)) for r, v in zip(bank.rows, bank.variables)}) == 500
    assert set(bank.variables.tolist()) == set(range(7))  # all variables pooled
    same = MemoryBank.build(etth1, BOUNDS, SEQ, HOR, max_items=500, seed=3)
    other = MemoryBank.build(etth1, BOUNDS, SEQ, HOR, max_items=500, seed=4)
    assert torch.equal(same.rows, bank.rows) and not torch.equal(other.rows, bank.rows)
    even = MemoryBank.build(etth1, BOUNDS, SEQ, HOR, max_items=500, seed=None)
    steps = np.diff(even.rows.numpy()[even.variables.numpy() == 2])
    assert steps.max() - steps.min() <= 1  # evenly spaced within a variable


def test_bank_refuses_bad_arguments(etth1, one_line_error):
    with pytest.raises(ValueError) as err:
        MemoryBank.build(etth1, (0, 9000), SEQ, HOR)
    one_line_error(err, "train_bounds")
    with pytest.raises(ValueError) as err:
        MemoryBank.build(etth1, (0, 50), SEQ, HOR)
    one_line_error(err, "seq_len + horizon")
    with pytest.raises(ValueError) as err:
        MemoryBank.build(etth1, BOUNDS, SEQ, HOR, max_items=0)
    one_line_error(err, "max_items")
    with pytest.raises(ValueError) as err:
        MemoryBank.build(etth1, BOUNDS, 48.0, HOR)
    one_line_error(err, "seq_len")
    bad = etth1.copy()
    bad[2000, 3] = np.nan
    with pytest.raises(ValueError) as err:
        MemoryBank.build(bad, BOUNDS, SEQ, HOR)
    one_line_error(err, "values")
    MemoryBank.build(bad, (2500, 6000), SEQ, HOR, max_items=10)  # NaN outside the bounds


def test_save_load_round_trip_and_check_bounds(small_bank, tmp_path, one_line_error):
    small_bank.save(tmp_path / "bank.pt")
    loaded = MemoryBank.load(tmp_path / "bank.pt")
    for name in ("windows", "futures", "rows", "variables", "mean", "std"):
        a, b = getattr(small_bank, name), getattr(loaded, name)
        assert a.dtype == b.dtype and torch.equal(a, b), name
    assert (loaded.bounds, loaded.seq_len, loaded.horizon, loaded.fingerprint) == \
        (BOUNDS, SEQ, HOR, small_bank.fingerprint)
    loaded.check_bounds(BOUNDS)
    loaded.check_bounds([1000, 6000])
    with pytest.raises(ValueError) as err:
        loaded.check_bounds((1000, 6100))
    one_line_error(err, "train_bounds")


def test_load_or_build_reuses_and_refuses(etth1, tmp_path, one_line_error):
    path = tmp_path / "sub" / "bank.pt"
    built = MemoryBank.load_or_build(path, etth1, BOUNDS, SEQ, HOR, max_items=50)
    assert path.is_file() and len(built) == 50
    reused = MemoryBank.load_or_build(path, etth1, BOUNDS, SEQ, HOR, max_items=80)
    assert len(reused) == 50 and torch.equal(reused.windows, built.windows)
    rebuilt = MemoryBank.load_or_build(path, etth1, BOUNDS, SEQ, HOR, max_items=80, rebuild=True)
    assert len(rebuilt) == 80 and len(MemoryBank.load(path)) == 80
    with pytest.raises(ValueError) as err:
        MemoryBank.load_or_build(path, etth1, (1000, 7000), SEQ, HOR)
    one_line_error(err, "train_bounds")
    with pytest.raises(ValueError) as err:
        MemoryBank.load_or_build(path, etth1, BOUNDS, SEQ + 1, HOR)
    one_line_error(err, "path")
    changed = etth1.copy()
    changed[3000, 0] += 1.0
    with pytest.raises(ValueError) as err:
        MemoryBank.load_or_build(path, changed, BOUNDS, SEQ, HOR)
    one_line_error(err, "path")


def test_window_stats_against_numpy(etth1):
    w = etth1[:120, 0].reshape(3, 40).astype(np.float64)
    t = np.linspace(0.0, 1.0, 40)
    slope = [np.polyfit(t, row, 1)[0] for row in w]
    expected = np.stack([w.mean(1), w.std(1), w.min(1), w.max(1), w[:, -1], slope], 1)
    np.testing.assert_allclose(window_stats(torch.tensor(w)).numpy(), expected, atol=1e-10)
    single = window_stats(torch.tensor([[2.5]]))
    assert torch.equal(single, torch.tensor([[2.5, 0.0, 2.5, 2.5, 2.5, 0.0]]))
