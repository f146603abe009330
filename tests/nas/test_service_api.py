"""``ctsnas serve`` against a real server on loopback (started and stopped by each test):
queries, refusals, the token, uploads; search jobs watched to completion, cancelled, and
resumed after the server and the driver were killed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import search_spaces as ss
from nas.engine.runner import plan_specs
from nas.service.jobs import read_job

#: Jobs run on the first 340 weeks of co2 (a CSV in the server's data folder, see the co2_csv
#: fixture): the final step of a search encodes the whole series several times.
SMOKE = {"data": "co2_340.csv", "profile": "smoke", "horizons": [4], "seed": 0}


def test_query_on_co2_returns_five_valid_specs(service):
    server = service
    r = server.post("/query", json={"data": "co2", "horizon": 24, "samples": 500, "top": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["data"] == "co2" and body["n_candidates"] == 500
    assert [t["predicted_rank"] for t in body["top"]] == [1, 2, 3, 4, 5]
    scores = [t["score"] for t in body["top"]]
    assert scores == sorted(scores, reverse=True)
    for t in body["top"]:
        ss.validate(t["spec"])
        assert ss.spec_hash(t["spec"]) == t["spec_hash"]
    assert 0 < body["seconds"] < 120
    again = server.post("/query", json={"data": "co2", "horizon": 24, "samples": 500,
                                         "top": 5}).json()
    assert [t["spec_hash"] for t in again["top"]] == [t["spec_hash"] for t in body["top"]]


@pytest.mark.parametrize("path, body, field", [
    ("/searches", {"data": "co2", "trials": 0}, "trials"),
    ("/searches", {"data": "co2", "trials": 2, "profile": "huge"}, "profile"),
    ("/searches", {"data": "co2", "trials": 2, "horizons": [0]}, "horizons"),
    ("/searches", {"data": "co2", "trials": 2, "strategy": "greedy"}, "strategy"),
    ("/searches", {"data": "co2", "trials": 2, "bogus": 1}, "bogus"),
    ("/searches", {"data": "co2", "trials": 2, "data_dir": "/etc"}, "data_dir"),
    ("/searches", {"trials": 2}, "data"),
    ("/searches", {"data": "../../etc/passwd", "trials": 2}, "data"),
    ("/searches", {"data": "/etc/passwd", "trials": 2}, "data"),
    ("/searches", {"data": "ETT-small/missing.csv", "trials": 2}, "data"),
    ("/searches", {"data": "co2", "trials": 2, "target": "nope"}, "target"),
    ("/query", {"data": "co2", "samples": 3, "top": 5}, "top"),
    ("/query", {"data": "co2", "horizon": 100000}, "horizon"),
    ("/query", {"data": "../secret.csv"}, "data"),
])
def test_bad_requests_get_422_naming_the_field(service, path, body, field):
    server = service
    r = server.post(path, json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"][-1] == field, detail
    assert server.get("/searches").json() == []  # nothing started


def test_csv_path_inside_data_dir_is_accepted(service):
    server = service
    r = server.post("/query", json={"data": "ETT-small/ETTh1.csv", "horizon": 24,
                                    "samples": 200, "top": 5, "target": "OT"})
    assert r.status_code == 200, r.text
    assert len(r.json()["top"]) == 5


def test_upload_is_ranked_and_limits_hold(service, co2_csv, tmp_path):
    server = service
    with open(co2_csv, "rb") as fh:
        r = server.post("/query/upload", files={"file": ("co2_340.csv", fh, "text/csv")},
                        data={"horizon": "4", "samples": "300", "top": "5"})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == "co2_340.csv" and len(r.json()["top"]) == 5
    assert not list((Path(server.runs_root) / "uploads").glob("*"))  # removed once answered
    big = tmp_path / "big.csv"
    big.write_text("date,x\n" + "".join(f"2020-01-01 00:{i % 60:02d}:00,{i}\n"
                                        for i in range(2000)))
    with open(big, "rb") as fh:
        r = server.post("/query/upload", files={"file": ("big.csv", fh, "text/csv")})
    assert r.status_code == 413, r.text
    bad = tmp_path / "bad.csv"
    bad.write_text("date,x\n" + "".join(f"2020-03-{30 - i:02d},{i}\n" for i in range(30)))
    with open(bad, "rb") as fh:
        r = server.post("/query/upload", files={"file": ("bad.csv", fh, "text/csv")})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "file", r.text


def test_non_local_bind_without_token_refuses_to_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CTSNAS_TOKEN"}
    run = subprocess.run([sys.executable, "-m", "nas.cli", "serve", "--host", "0.0.0.0",
                          "--runs-root", str(tmp_path / "r")], capture_output=True, text=True,
                         timeout=120, env=env)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "--host" in lines[0] and "token" in lines[0], run.stderr
    assert not (tmp_path / "r").exists()


def test_token_is_checked_on_every_request(serve, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    server = serve(env={"CTSNAS_TOKEN": "s3cret-token", "CTSNAS_DATA_DIR": str(empty)})
    server.wait_up(headers={"Authorization": "Bearer s3cret-token"})
    for path in ("/health", "/searches", "/", "/docs"):
        assert server.get(path).status_code == 401
        assert server.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert server.post("/query", json={"data": "co2"}).status_code == 401
    good = {"Authorization": "Bearer s3cret-token"}
    assert server.get("/searches", headers=good).json() == []
    assert server.get("/?token=s3cret-token").status_code == 200  # a browser's first visit
    # the data directory holds no ETTh1: refused, nothing read elsewhere
    r = server.post("/query", json={"data": "ETTh1", "samples": 100}, headers=good)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "data", r.text


def _runs_show(run_dir) -> dict:
    run = subprocess.run([sys.executable, "-m", "nas.cli", "runs", "show", str(run_dir),
                          "--json"], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(run.stdout)


def _wait_trials(server, job_id: str, n: int, timeout: float = 600) -> dict:
    deadline = time.time() + timeout
    while True:
        job = server.get(f"/searches/{job_id}").json()
        if job["trials_done"] >= n or job["state"] in ("done", "failed"):
            return job
        assert time.time() < deadline, job
        time.sleep(0.3)


def test_search_watched_killed_resumed_to_completion(serve, co2_csv):
    """A smoke search is watched (queued/starting -> running), the server and the driver are
    SIGKILLed, a restarted server finds the job interrupted, the resumed job completes
    without re-running a finished trial, and its leaderboard is ``ctsnas runs show``'s."""
    server = serve(data_dir=co2_csv.parent).wait_up()
    r = server.post("/searches", json={**SMOKE, "trials": 3})
    assert r.status_code == 201, r.text
    job = r.json()
    job_id = job["id"]
    assert job["state"] in ("queued", "starting") and job["trials_planned"] == 3
    job = _wait_trials(server, job_id, 1)
    assert job["state"] == "running" and job["trials_done"] < 3, job
    listed = server.get("/searches").json()
    assert [j["id"] for j in listed] == [job_id] and listed[0]["trials_done"] >= 1
    seen = server.get(f"/searches/{job_id}").json()["summary"]["leaderboard"]
    driver = read_job(server.runs_root / job_id)["driver_pid"]
    server.kill()  # SIGKILL: no clean-up of any kind
    os.killpg(driver, signal.SIGKILL)  # the machine lost the driver too
    restarted = serve(data_dir=co2_csv.parent, port=server.port).wait_up()
    job = restarted.get(f"/searches/{job_id}").json()
    # a trial may finish between the last poll and the kill: the store, not the poll, is the truth
    before = job["summary"]["leaderboard"]
    assert job["state"] == "interrupted" and job["trials_done"] == len(before) >= len(seen), job
    assert {r["trial"]: r["finished_at"] for r in seen}.items() <= {
        r["trial"]: r["finished_at"] for r in before}.items()
    r = restarted.post(f"/searches/{job_id}/resume")
    assert r.status_code == 200 and r.json()["resumes"] == 1, r.text
    job = restarted.wait_job(job_id)
    assert job["state"] == "done", job
    board = job["summary"]["leaderboard"]
    rows = {r["trial"]: r for r in board}
    assert sorted(rows) == [0, 1, 2]
    assert {r["status"] for r in board} <= {"ok", "degenerate"}  # 340 weeks: some learn nothing
    ok = [r for r in board if r["status"] == "ok"]
    assert ok and [r["rank"] for r in ok] == list(range(1, len(ok) + 1))
    assert sorted(rows_hash := [r["spec_hash"] for r in board]) == sorted(
        ss.spec_hash(s) for s in plan_specs(3, 0, spatial=False))
    assert rows[0]["spec_hash"] == ss.spec_hash(ss.preset("ts2vec")) and len(set(rows_hash)) == 3
    assert rows[0]["versions"]["torch"].startswith("2.13") and rows[0]["seconds"] > 0
    run = server.runs_root / job_id
    assert json.loads((run / "best_spec.json").read_text()) == board[0]["spec"]
    assert (run / "best_so_far.png").stat().st_size > 1000 and (run / "best_encoder.pt").is_file()
    assert set(job["summary"]["best_test"]) == {"4"}
    assert job["summary"]["best_test"]["4"]["test"]["mse"] > 0
    for old in before:  # finished trials were kept, not re-run
        assert rows[old["trial"]]["finished_at"] == old["finished_at"]
    listed = restarted.get("/searches").json()[0]
    assert listed["trials_done"] == 3 and listed["trials_failed"] == 3 - len(ok)
    assert listed["best_val_mse"] == min(r["val_mse"] for r in ok)
    cli = _runs_show(server.runs_root / job_id)
    assert board == cli["leaderboard"] and job["summary"]["references"] == cli["references"]
    assert set(cli["references"]) >= {"raw_lookback", "random_encoder"}
    assert job["summary"]["best_test"] == cli["best_test"]
    assert job["best_spec"] == board[0]["spec"]
    svg = restarted.get(f"/searches/{job_id}/chart.svg")
    assert svg.headers["content-type"].startswith("image/svg") and 'id="best-so-far"' in svg.text
    assert restarted.delete(f"/searches/{job_id}").status_code == 409  # it ended
    assert restarted.post(f"/searches/{job_id}/resume").status_code == 409
    assert restarted.get("/searches/nope").status_code == 404
    assert restarted.get("/searches/..%2F..%2Fetc").status_code == 404


def test_cancel_keeps_finished_trials(serve, co2_csv):
    server = serve(data_dir=co2_csv.parent).wait_up()
    job = server.post("/searches", json={**SMOKE, "trials": 40}).json()
    job = _wait_trials(server, job["id"], 1)
    assert job["state"] == "running", job
    r = server.delete(f"/searches/{job['id']}")
    assert r.status_code == 200, r.text
    job = server.wait_job(job["id"], ("cancelled",), timeout=120)
    assert job["state"] == "cancelled", job
    assert 1 <= job["trials_done"] < 40
    assert len(job["summary"]["leaderboard"]) == job["trials_done"]
    assert server.delete(f"/searches/{job['id']}").status_code == 409


@pytest.mark.slow
def test_query_with_train_top_becomes_a_job(serve, data_dir):
    server = serve(data_dir=data_dir).wait_up()
    r = server.post("/query", json={"data": "co2", "horizon": 4, "samples": 200, "top": 5,
                                    "train_top": 2, "profile": "smoke"})
    assert r.status_code == 202, r.text
    job = server.wait_job(r.json()["job"]["id"])
    assert job["kind"] == "query" and job["state"] == "done", job
    trained = job["query"]["train"]["trained"]
    assert len(trained) == 2 and trained[0]["spec_hash"] == job["query"]["top"][0]["spec_hash"]
    assert job["query"]["train"]["best"]["status"] == "ok"
    assert job["summary"]["n_trials"] == 2
