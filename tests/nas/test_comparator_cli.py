"""``ctsnas comparator train --out`` and ``ctsnas query --weights``: training writes only where
it is told (the package's ``seeds/`` and ``comparator/weights/`` stay byte-identical), query
ranks with the folder it is given, and task features are cached outside the package."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from nas.cli import main
from nas.zeroshot import features
from nas.zeroshot.comparators import WEIGHTS_DIR
from nas.zeroshot.features import (
    SEEDS_DIR,
    SHIPPED_FEATURES,
    cache_dir,
    default_cache,
    load_features,
)
from nas.zeroshot.query import query
from nas.zeroshot.seeds import read_records

TASKS = ("illness-u-0-966-h12", "illness-u-0-966-h24", "illness-mall-0-966-h12",
         "illness-mall-0-966-h24")
QUERY = ["query", "--data", "co2", "--horizon", "4", "--samples", "200", "--json"]


def digest(folder: Path) -> dict:
    """relative path -> SHA-256 of every file under ``folder`` (bytecode caches aside)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture
def few_records(tmp_path) -> Path:
    """The shipped records of the four illness tasks (200 records)."""
    recs = [r for r in read_records(SEEDS_DIR / "records.jsonl") if r["task_id"] in TASKS]
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CTSNAS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_training_writes_only_to_out_and_query_reads_weights(few_records, tmp_path, capsys):
    pytest.importorskip("torch_geometric")
    before = {d: digest(d) for d in (SEEDS_DIR, WEIGHTS_DIR)}
    out = tmp_path / "w"
    assert main(["comparator", "train", "--records", str(few_records), "--out", str(out),
                 "--epochs", "1"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["n_tasks"] == 4 and meta["n_records"] == 200 and meta["datasets"] == ["illness"]
    assert sorted(p.name for p in out.iterdir()) == ["tahc.json", "tahc.pt"]
    assert {d: digest(d) for d in (SEEDS_DIR, WEIGHTS_DIR)} == before
    assert main([*QUERY, "--weights", str(out)]) == 0
    ours = json.loads(capsys.readouterr().out)["top"]
    direct = query({"data": "co2", "horizon": 4, "samples": 200, "weights": str(out)})["top"]
    assert [(t["spec_hash"], t["score"]) for t in ours] == [(t["spec_hash"], t["score"])
                                                            for t in direct]
    assert main(QUERY) == 0  # default: the shipped comparator, another model
    shipped = json.loads(capsys.readouterr().out)["top"]
    assert [t["score"] for t in shipped] != [t["score"] for t in ours]
    assert {d: digest(d) for d in (SEEDS_DIR, WEIGHTS_DIR)} == before


def test_comparator_train_requires_out(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["comparator", "train"])
    assert exit_.value.code == 2 and "--out" in capsys.readouterr().err


def test_missing_task_features_are_cached_outside_the_package(tmp_path, private_cache,
                                                              monkeypatch, data_dir):
    shipped_all = json.loads(SHIPPED_FEATURES.read_text())
    partial = tmp_path / "shipped.json"  # a shipped file that lacks one task
    partial.write_text(json.dumps({k: v for k, v in shipped_all.items() if k != TASKS[0]}))
    before = partial.read_bytes()
    recs = [{"task_id": t} for t in TASKS[:2]]
    got = load_features(recs, data_dir, shipped=partial)
    assert partial.read_bytes() == before  # the shipped file is never written
    cache = default_cache()
    assert cache.parent == private_cache and set(json.loads(cache.read_text())) == {TASKS[0]}
    np.testing.assert_allclose(got[TASKS[0]], shipped_all[TASKS[0]], rtol=1e-3, atol=1e-4)
    assert got[TASKS[1]] == shipped_all[TASKS[1]]
    with pytest.raises(ValueError, match="^task_id: got 'nope'; allowed: a task of the"):
        load_features([{"task_id": "nope"}], data_dir, shipped=partial)
    monkeypatch.setattr(features, "suite_features", lambda *a, **k: pytest.fail("recomputed"))
    assert load_features(recs, data_dir, shipped=partial)[TASKS[0]] == got[TASKS[0]]


def test_the_cache_directory_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CTSNAS_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "a"
    monkeypatch.delenv("CTSNAS_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "ctsnas"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "ctsnas"
    assert default_cache().parent == cache_dir()
    assert default_cache().name.startswith("task_features-")
