"""The service's job records without a server or Ray: ids, the state a dead driver leaves,
cancel and resume rules, and the request checks that run before a job exists."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nas.service.jobs import JobError, Jobs, driver_alive, new_id, read_job, update_job
from nas.service.requests import RequestError, SearchRequest, resolve_data, search_config


def _job(root, job_id: str, **fields) -> None:
    (root / job_id).mkdir(parents=True)
    update_job(root / job_id, **{"id": job_id, "kind": "search", "request": {"data": "co2"},
                                 "config": {"data": "co2", "trials": 3}, "created": 1.0,
                                 "resumes": 0, "cancel_requested": False, **fields})


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_ids_are_safe_directory_names():
    job_id = new_id("../../etc/pass wd.csv")
    assert "/" not in job_id and " " not in job_id and ".." not in job_id
    assert job_id.split("-")[2] == "pass_wd"


@pytest.mark.parametrize("bad", ["../x", ".hidden", "a/b", "", "x y", "nope"])
def test_unknown_or_unsafe_ids_are_404(tmp_path, bad):
    with pytest.raises(JobError) as err:
        Jobs(tmp_path).run_dir(bad)
    assert err.value.status == 404


def test_a_dead_driver_leaves_an_interrupted_job_and_a_cancel_a_cancelled_one(tmp_path):
    _job(tmp_path, "a", state="running", driver_pid=_dead_pid())
    _job(tmp_path, "b", state="starting", driver_pid=_dead_pid(), cancel_requested=True)
    _job(tmp_path, "c", state="running", driver_pid=os.getpid())  # alive, but not a driver
    jobs = Jobs(tmp_path, max_jobs=1)
    states = {j["id"]: j["state"] for j in jobs.list()}
    assert states == {"a": "interrupted", "b": "cancelled", "c": "interrupted"}
    assert read_job(tmp_path / "a")["state"] == "interrupted"  # written down, not only shown
    assert not driver_alive(os.getpid(), tmp_path / "c") and not driver_alive(None, tmp_path)


def test_cancel_and_resume_follow_the_state(tmp_path):
    _job(tmp_path, "q", state="queued")
    _job(tmp_path, "d", state="done", driver_pid=_dead_pid(), finished=2.0)
    jobs = Jobs(tmp_path, max_jobs=0)  # no slot: nothing is launched
    assert jobs.cancel("q")["state"] == "cancelled"
    for call in (jobs.cancel, jobs.resume):
        with pytest.raises(JobError) as err:
            call("d")
        assert err.value.status == 409
    resumed = jobs.resume("q")
    assert resumed["state"] == "queued" and resumed["resumes"] == 1


def test_search_requests_are_checked_before_a_job_exists(tmp_path, data_dir):
    config = search_config(SearchRequest(data="ETTh1", trials=2, profile="smoke",
                                         horizons=[24]), data_dir)
    assert config["data"] == "ETTh1" and config["data_dir"] == str(data_dir)
    path = resolve_data("ETT-small/ETTh2.csv", data_dir)
    assert path["data"] == str((data_dir / "ETT-small" / "ETTh2.csv").resolve())
    for data in ("../ETT-small/ETTh1.csv", "/etc/hostname", "ETT-small/../../x.csv"):
        with pytest.raises(RequestError) as err:
            resolve_data(data, data_dir)
        assert err.value.field == "data" and "outside --data-dir" in str(err.value)
    with pytest.raises(RequestError) as err:
        search_config(SearchRequest(data="co2", trials=2, eta=1, fidelity="asha"), data_dir)
    assert err.value.field == "eta"
    assert not list(tmp_path.iterdir())
