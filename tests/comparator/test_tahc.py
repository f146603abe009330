"""T-AHC (AutoCTS++ task-aware comparator): antisymmetry, learning a task-dependent synthetic
ranking, determinism, save/load, rank and errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

import search_spaces as ss
from comparator import (
    NUM_FEATURES,
    TAHC,
    TAHCEnsemble,
    PairData,
    load,
    rank,
    save,
    spec_to_data,
    train_tahc,
)

TASKS = {"up": np.array([1.0, -1.0]), "down": np.array([-1.0, 1.0])}
SIGN = {"up": 1.0, "down": -1.0}  # "up": more encoder layers = worse; "down": better


def _records(rng: np.random.Generator, n_per_task: int) -> list:
    """Synthetic, learnable and task-dependent: val_mse = +-layers/10 + N(0, 0.05)."""
    out = []
    for task, sign in SIGN.items():
        for _ in range(n_per_task):
            spec = ss.sample(rng, spatial=bool(rng.integers(2)))
            mse = sign * spec["Encoder"]["layers"] / 10 + 0.05 * rng.normal()
            out.append({"task_id": task, "spec": spec, "val_mse": float(mse)})
    return out


@pytest.fixture(scope="module")
def trained():
    records = _records(np.random.default_rng(0), 150)
    return train_tahc(records, TASKS, epochs=40, pairs_per_task=256, seed=0)


def test_learns_task_dependent_ranking_on_held_out_specs(trained):
    model, history = trained
    assert len(history) == 40 and history[-1]["loss"] < history[0]["loss"]
    rng = np.random.default_rng(99)
    test = [ss.sample(rng) for _ in range(150)]
    layers = np.array([s["Encoder"]["layers"] for s in test])
    i, j = np.triu_indices(len(test), 1)
    keep = layers[i] != layers[j]
    for task, sign in SIGN.items():
        scores = rank(model, test, TASKS[task])
        assert scores.shape == (len(test),) and np.isfinite(scores).all()
        truth = sign * layers[i] < sign * layers[j]  # a has the lower val_mse
        acc = np.mean((scores[i] > scores[j])[keep] == truth[keep])
        assert acc > 0.8, f"{task}: held-out pairwise accuracy {acc:.3f}"


def _pair_loader(specs_a, specs_b, task):
    pairs = [PairData.from_graphs(spec_to_data(a), spec_to_data(b), task=task)
             for a, b in zip(specs_a, specs_b)]
    return DataLoader(pairs, batch_size=len(pairs), follow_batch=["x_a", "x_b"])


@pytest.mark.parametrize("use_task", [True, False])
def test_antisymmetry_and_agreement_with_rank(use_task):
    torch.manual_seed(1)
    model = TAHC(NUM_FEATURES, 2, hidden=32, layers=2, use_task=use_task).eval()
    rng = np.random.default_rng(1)
    a = [ss.sample(rng) for _ in range(20)]
    b = [ss.sample(rng) for _ in range(20)]
    with torch.no_grad():
        p_ab = model(next(iter(_pair_loader(a, b, TASKS["up"]))))
        p_ba = model(next(iter(_pair_loader(b, a, TASKS["up"]))))
    assert p_ab.shape == (20,)
    torch.testing.assert_close(p_ab + p_ba, torch.ones(20), atol=1e-6, rtol=0)
    assert p_ab.std() > 0  # not a constant 0.5
    sa, sb = rank(model, a, TASKS["up"]), rank(model, b, TASKS["up"])
    torch.testing.assert_close(p_ab, torch.sigmoid(torch.from_numpy(sa - sb)), atol=1e-5, rtol=0)
    if not use_task:  # the task is ignored
        np.testing.assert_allclose(rank(model, a, TASKS["down"]), sa, atol=1e-6)


def test_score_of_batch_equals_rank(trained):
    model, _ = trained
    specs = [ss.sample(np.random.default_rng(s)) for s in range(5)]
    batch = Batch.from_data_list([spec_to_data(s) for s in specs])
    with torch.no_grad():
        scores = model.score(batch, torch.as_tensor(TASKS["up"], dtype=torch.float32))
    np.testing.assert_allclose(scores.numpy(), rank(model, specs, TASKS["up"], batch_size=2),
                               atol=1e-5)


def test_rank_keeps_graphs_apart_whatever_the_batch_size(trained):
    """Batched graphs stay disjoint: one graph per pass, or 7 or all at once, same scores."""
    model, _ = trained
    specs = [ss.sample(np.random.default_rng(s), spatial=bool(s % 2)) for s in range(23)]
    alone = rank(model, specs, TASKS["up"], batch_size=1)
    for batch_size in (7, 1024):
        np.testing.assert_allclose(rank(model, specs, TASKS["up"], batch_size=batch_size), alone,
                                   atol=1e-5, rtol=0)


def test_training_is_deterministic_and_skips_failed_records():
    records = _records(np.random.default_rng(5), 20)
    records.append({"task_id": "up", "spec": ss.preset("ts2vec"), "val_mse": float("nan")})
    runs = [train_tahc(records, TASKS, epochs=2, pairs_per_task=64, seed=3) for _ in range(2)]
    assert runs[0][1] == runs[1][1]
    specs = [r["spec"] for r in records[:10]]
    np.testing.assert_array_equal(rank(runs[0][0], specs, TASKS["up"]),
                                  rank(runs[1][0], specs, TASKS["up"]))


def test_save_load_round_trip(trained, tmp_path):
    model, _ = trained
    path = tmp_path / "tahc.pt"
    save(model, path)
    obj = torch.load(path, weights_only=True)
    assert obj["config"] == {"n_node_features": NUM_FEATURES, "n_task_features": 2,
                             "hidden": 64, "layers": 3, "use_task": True}
    specs = [ss.sample(np.random.default_rng(s)) for s in range(30)]
    np.testing.assert_array_equal(rank(load(path), specs, TASKS["down"]),
                                  rank(model, specs, TASKS["down"]))


def test_rank_restores_threads_and_handles_empty(trained):
    model, _ = trained
    before = torch.get_num_threads()
    assert rank(model, [], TASKS["up"]).shape == (0,)
    assert torch.get_num_threads() == before


def test_errors(trained):
    model, _ = trained
    records = _records(np.random.default_rng(6), 5)
    with pytest.raises(ValueError, match="empty"):
        train_tahc([], TASKS)
    with pytest.raises(ValueError, match="task_id"):
        train_tahc(records, {"up": TASKS["up"]}, epochs=1)
    with pytest.raises(ValueError, match="no task has two records"):
        train_tahc([dict(r, val_mse=1.0) for r in records], TASKS, epochs=1)
    with pytest.raises(ValueError, match="task_feature"):
        rank(model, [ss.preset("ts2vec")], np.zeros(3))
    with pytest.raises(ValueError, match="task_feature"):
        rank(model, [ss.preset("ts2vec")], None)
    with pytest.raises(ValueError, match="use_task"):
        TAHC(NUM_FEATURES, 0)


def test_ensemble_is_the_mean_of_its_members_and_round_trips(tmp_path):
    """members=M trains seeds s, s+1, ...: member k equals a single model of seed s+k, the
    ensemble's score is their mean, P(a, b) stays antisymmetric, and save/load keeps it."""
    records = _records(np.random.default_rng(7), 20)
    ens, history = train_tahc(records, TASKS, epochs=2, pairs_per_task=64, seed=3, members=2)
    assert isinstance(ens, TAHCEnsemble) and len(history) == 4
    assert [h["member"] for h in history] == [0, 0, 1, 1]
    singles = [train_tahc(records, TASKS, epochs=2, pairs_per_task=64, seed=s)[0] for s in (3, 4)]
    specs = [ss.sample(np.random.default_rng(s)) for s in range(12)]
    mean = np.mean([rank(m, specs, TASKS["up"]) for m in singles], axis=0)
    np.testing.assert_allclose(rank(ens, specs, TASKS["up"]), mean, atol=1e-6)
    with torch.no_grad():
        p_ab = ens(next(iter(_pair_loader(specs[:6], specs[6:], TASKS["up"]))))
        p_ba = ens(next(iter(_pair_loader(specs[6:], specs[:6], TASKS["up"]))))
    torch.testing.assert_close(p_ab + p_ba, torch.ones(6), atol=1e-6, rtol=0)
    save(ens, tmp_path / "ens.pt")
    assert torch.load(tmp_path / "ens.pt", weights_only=True)["config"]["n_members"] == 2
    np.testing.assert_array_equal(rank(load(tmp_path / "ens.pt"), specs, TASKS["up"]),
                                  rank(ens, specs, TASKS["up"]))
    with pytest.raises(ValueError, match="members"):
        train_tahc(records, TASKS, epochs=1, members=0)
    with pytest.raises(ValueError, match="configurations"):
        TAHCEnsemble([singles[0], TAHC(NUM_FEATURES, 2, hidden=8)])
