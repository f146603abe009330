"""Fault tolerance of the search: the driver killed with SIGKILL and resumed, and a two-node
Ray cluster losing a node mid-search. Each test runs its own Ray."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import ray
from ray.cluster_utils import Cluster

import search_spaces as ss
from nas.engine.runner import plan_specs, search

BUDGET = 4  # seed 0 plans ts2vec + three specs of 1-20 s each at the smoke profile


def _count(db) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_driver_killed_with_sigkill_then_resumed_ends_with_the_planned_trials(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "nas.cli", "search", "--data", "co2", "--budget", str(BUDGET),
           "--profile", "smoke", "--horizons", "4,12", "--workers", "1", "--quiet",
           "--run-dir", str(run)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while _count(run / "run.sqlite") < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started
    proc.wait()
    killed_at = _count(run / "run.sqlite")
    assert 2 <= killed_at < BUDGET
    subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "stop", "--force"],
                   capture_output=True)
    summary = search({"workers": 2}, run, resume=True, progress=False)
    rows = summary["leaderboard"]
    hashes = [r["spec_hash"] for r in rows]
    assert len(rows) == BUDGET and len(set(hashes)) == BUDGET
    assert sorted(hashes) == sorted(ss.spec_hash(s) for s in plan_specs(BUDGET, 0, False))
    ray.shutdown()


def test_two_node_cluster_losing_a_node_mid_search_loses_nothing(tmp_path):
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    run = tmp_path / "run"
    result = {}

    def go():
        result["summary"] = search({"data": "co2", "budget": BUDGET, "profile": "smoke",
                                    "horizons": [4, 12], "address": cluster.address},
                                   run, progress=False)

    thread = threading.Thread(target=go)
    thread.start()
    deadline = time.time() + 240
    while _count(run / "run.sqlite") < 1 and time.time() < deadline:
        time.sleep(0.2)
    cluster.remove_node(worker)
    thread.join(timeout=600)
    try:
        summary = result["summary"]
        statuses = [r["status"] for r in summary["leaderboard"]]
        assert summary["n_trials"] == BUDGET and statuses == ["ok"] * BUDGET
    finally:
        ray.shutdown()
        cluster.shutdown()
