"""Fixtures of the ``nas`` tests: a short real series as a CSV file; real ``ctsnas serve``
processes on loopback."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

import downstream as ds


@pytest.fixture(scope="module")
def co2_csv(tmp_path_factory):
    """The first 340 weeks of the embedded Mauna Loa CO2 series as a CSV (date, co2), missing
    weeks interpolated."""
    series = ds.load("co2")
    frame = pd.DataFrame({"date": series.dates[:340], "co2": series.values[:340, 0]})
    frame["co2"] = frame["co2"].interpolate(limit_direction="both")
    path = tmp_path_factory.mktemp("data") / "co2_340.csv"
    frame.to_csv(path, index=False)
    return path


class Server:
    """A real ``ctsnas serve`` process on loopback, started in its own session by the test;
    ``base`` is its URL. Job drivers it starts run in sessions of their own."""

    def __init__(self, runs_root, data_dir=None, *extra, env=None, port=None):
        import socket

        if port is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        self.port, self.runs_root = port, runs_root
        self.base = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "nas.cli", "serve", "--port", str(port), "--runs-root",
               str(runs_root), *(["--data-dir", str(data_dir)] if data_dir else []), *extra]
        self.log = open(Path(runs_root).parent / f"serve-{port}.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env={**os.environ, **(env or {})})

    def wait_up(self, timeout: float = 120.0, headers=None) -> Server:
        """Block until ``/health`` answers (raises when the process ends or time runs out)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ctsnas serve exited with {self.proc.returncode}: "
                                   + Path(self.log.name).read_text()[-2000:])
            try:
                if httpx.get(self.base + "/health", headers=headers, timeout=5).status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("ctsnas serve did not answer /health in time")

    def get(self, path: str, **kw):
        return httpx.get(self.base + path, timeout=120, **kw)

    def post(self, path: str, **kw):
        return httpx.post(self.base + path, timeout=300, **kw)

    def delete(self, path: str, **kw):
        return httpx.delete(self.base + path, timeout=60, **kw)

    def wait_job(self, job_id: str, states=("done",), timeout: float = 600.0, **kw) -> dict:
        """Poll ``GET /searches/{id}`` until its state is in ``states`` (or ends elsewhere)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = self.get(f"/searches/{job_id}", **kw).json()
            if job["state"] in states or job["state"] in ("done", "failed", "cancelled",
                                                          "interrupted"):
                return job
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")

    def kill(self) -> None:
        """SIGKILL the server (its job drivers live on in their own sessions)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def end_drivers(runs_root) -> None:
    """SIGKILL the process groups of the job drivers the test's servers started under
    ``runs_root`` (their PIDs in job.json, checked against the command line)."""
    from nas.service.jobs import driver_alive, read_job

    for job_file in Path(runs_root).glob("*/job.json"):
        job = read_job(job_file.parent)
        pid = job.get("driver_pid")
        if driver_alive(pid, job_file.parent):
            os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def serve(tmp_path):
    """Factory of :class:`Server` s under ``tmp_path``; at teardown every server and every job
    driver they started is ended."""
    servers = []

    def start(*extra, data_dir=None, env=None, runs_root=None, port=None):
        root = runs_root or tmp_path / "service"
        server = Server(root, data_dir, *extra, env=env, port=port)
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.stop()
    end_drivers(tmp_path / "service")


@pytest.fixture(scope="module")
def service(tmp_path_factory, data_dir):
    """One server for the tests that start no job: --data-dir set, uploads up to 16 KiB."""
    root = tmp_path_factory.mktemp("shared") / "service"
    started = Server(root, data_dir, "--max-upload", "16K").wait_up()
    yield started
    started.stop()
    end_drivers(root)
