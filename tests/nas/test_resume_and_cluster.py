"""Fault tolerance of the search: the driver killed with SIGKILL and resumed, and a two-node
Ray cluster losing a node mid-search. Each test runs its own Ray under a private temp root
(``RAY_TMPDIR``) and stops only the processes it started: other Ray instances on the machine
(other users, other test runs) are never touched."""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import psutil
import pytest
import ray
from ray.cluster_utils import Cluster

import search_spaces as ss
from nas.engine.runner import plan_specs, search

TRIALS = 4  # seed 0 plans ts2vec + three specs of 1-20 s each at the smoke profile


def _count(db) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _started_under(root: str) -> list:
    """Our processes whose command line names ``root`` (Ray's GCS, raylet, workers and agents
    all get their session directory under it)."""
    out = []
    for p in psutil.process_iter(["pid", "cmdline", "uids"]):
        try:
            if p.info["uids"].real == os.getuid() and root in " ".join(p.info["cmdline"] or ()):
                out.append(p)
        except (psutil.Error, TypeError):
            continue
    return out


def _kill(procs) -> None:
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=30)


@pytest.fixture
def ray_root(monkeypatch):
    """A private Ray temp root (short: Ray's socket paths must stay under 108 bytes); the Ray
    processes left under it are ended afterwards, and only those."""
    root = tempfile.mkdtemp(prefix="ctsnas-ray-", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", root)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    yield root
    ray.shutdown()
    _kill(_started_under(root))
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow  # about 35 s; the default run kills and resumes a driver through the service
# (tests/nas/test_service_api.py::test_search_watched_killed_resumed_to_completion)
def test_driver_killed_with_sigkill_then_resumed_ends_with_the_planned_trials(tmp_path,
                                                                              ray_root):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "nas.cli", "search", "--data", "co2", "--trials", str(TRIALS),
           "--profile", "smoke", "--horizons", "4,12", "--workers", "1", "--quiet",
           "--run-dir", str(run)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while _count(run / "run.sqlite") < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    started = psutil.Process(proc.pid).children(recursive=True) + _started_under(ray_root)
    assert started, "the driver started no Ray processes under the private root"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and what stayed in its process group
    proc.wait()
    _kill(started)  # the Ray processes that driver started, and no others
    assert not _started_under(ray_root)
    killed_at = _count(run / "run.sqlite")
    assert 2 <= killed_at < TRIALS
    summary = search({"workers": 2}, run, resume=True, progress=False)
    rows = summary["leaderboard"]
    hashes = [r["spec_hash"] for r in rows]
    assert len(rows) == TRIALS and len(set(hashes)) == TRIALS
    assert sorted(hashes) == sorted(ss.spec_hash(s) for s in plan_specs(TRIALS, 0, False))


@pytest.mark.slow  # about 55 s: a two-node cluster losing a node
def test_two_node_cluster_losing_a_node_mid_search_loses_nothing(tmp_path, ray_root):
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        worker = cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, log_to_driver=False)
        run = tmp_path / "run"
        result = {}

        def go():
            result["summary"] = search({"data": "co2", "trials": TRIALS, "profile": "smoke",
                                        "horizons": [4, 12], "address": cluster.address},
                                       run, progress=False)

        thread = threading.Thread(target=go)
        thread.start()
        deadline = time.time() + 240
        while _count(run / "run.sqlite") < 1 and time.time() < deadline:
            time.sleep(0.2)
        cluster.remove_node(worker)
        thread.join(timeout=600)
        summary = result["summary"]
        statuses = [r["status"] for r in summary["leaderboard"]]
        assert summary["n_trials"] == TRIALS and statuses == ["ok"] * TRIALS
    finally:
        ray.shutdown()
        cluster.shutdown()
