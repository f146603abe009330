"""The search driver's faults, end to end through ``python -m nas.cli`` (issue 14): a second
search on a held run directory is refused, Ctrl-C exits 130 naming the resume command, a
search killed with SIGKILL while a second one waits on the lock (``--wait-lock``) is then
resumed exactly by it, and the README's cluster commands work as written with Ray 2.60 token
authentication (a head and a second node started with ``ray start`` on this machine).

Every Ray here runs under a private temp root and a private HOME (its token file), and only
the processes started under that root are ended, by PID (other Ray processes on the machine
are left alone)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

import search_spaces as ss
from nas.engine.runner import plan_specs

TRIALS = 4
LONG = 12  # trials of the killed search: it must still be running when killed
SEARCH = [sys.executable, "-m", "nas.cli", "search", "--data", "co2", "--profile", "smoke",
          "--horizons", "4,12", "--workers", "1", "--quiet"]


def _rows(db) -> list:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("SELECT trial, spec_hash FROM trials ORDER BY trial").fetchall()
    except sqlite3.OperationalError:
        return []


def _wait_rows(db, n: int, proc, seconds: float = 300) -> None:
    deadline = time.time() + seconds
    while len(_rows(db)) < n and time.time() < deadline and proc.poll() is None:
        time.sleep(0.3)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    assert len(_rows(db)) >= n


def _ours(root: str) -> list:
    """Our processes started under ``root``: their command line or HOME names it."""
    out = []
    for p in psutil.process_iter(["pid", "cmdline", "uids"]):
        try:
            if p.info["uids"].real != os.getuid() or p.pid == os.getpid():
                continue
            if root in " ".join(p.info["cmdline"] or ()) or \
                    p.environ().get("HOME", "").startswith(root):
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


class Roots:
    """Private Ray temp roots (short: socket paths < 108 bytes), each with its own HOME."""

    def __init__(self):
        self.paths = []

    def env(self, **extra) -> dict:
        root = tempfile.mkdtemp(prefix="ctr-", dir="/tmp")
        self.paths.append(root)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        return {**env, "RAY_TMPDIR": root, "HOME": f"{root}/home", **extra}

    def cleanup(self) -> None:
        for root in self.paths:
            _kill(_ours(root))
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def roots():
    r = Roots()
    yield r
    r.cleanup()


def _start(cmd, env, **kw):
    return subprocess.Popen([str(c) for c in cmd], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


@pytest.mark.slow  # about 5 min on 2 shared cores (12 smoke trials, three drivers)
def test_lock_refusal_then_sigkill_while_a_second_search_waits_resumes_exactly(tmp_path,
                                                                                roots):
    run = tmp_path / "run"
    env1 = roots.env()
    first = _start(SEARCH + ["--trials", LONG, "--run-dir", run], env1)
    _wait_rows(run / "run.sqlite", 1, first)
    refused = subprocess.run([str(c) for c in SEARCH + ["--resume", "--run-dir", run]],
                             env=roots.env(), capture_output=True, text=True, timeout=300)
    last = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert last.startswith("ctsnas: error: --run-dir:") and f"(PID {first.pid})" in last
    second = _start(SEARCH + ["--resume", "--wait-lock", 900, "--run-dir", run], roots.env())
    time.sleep(8)  # the second has started its Ray and waits on the lock
    assert second.poll() is None and first.poll() is None
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    _kill(_ours(roots.paths[0]))  # the killed driver's Ray, and no other
    killed_at = _rows(run / "run.sqlite")
    assert 1 <= len(killed_at) < LONG
    assert second.wait(timeout=900) == 0, second.stderr.read().decode()[-2000:]
    rows = _rows(run / "run.sqlite")
    assert [t for t, _ in rows] == list(range(LONG)) and set(killed_at) <= set(rows)
    assert sorted(h for _, h in rows) == sorted(ss.spec_hash(s)
                                                for s in plan_specs(LONG, 0, False))


def _default_sigint() -> None:
    """In the child: SIGINT at its default, as for a terminal's foreground command (a test
    run started in the background by a shell inherits SIGINT ignored, and Python then
    installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_exits_130_and_names_the_resume_command(tmp_path, roots):
    run = tmp_path / "run"
    proc = _start(SEARCH + ["--trials", TRIALS, "--run-dir", run], roots.env(),
                  preexec_fn=_default_sigint)
    _wait_rows(run / "run.sqlite", 1, proc)
    before = _rows(run / "run.sqlite")
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground group
    assert proc.wait(timeout=120) == 130
    err = proc.stderr.read().decode()
    assert f"ctsnas: interrupted; resume with: ctsnas search --resume --run-dir {run}" in err
    assert "Traceback" not in err and set(before) <= set(_rows(run / "run.sqlite"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_start(env, *args) -> None:
    ports = ["--dashboard-agent-listen-port", _free_port(), "--metrics-export-port",
             _free_port(), "--runtime-env-agent-port", _free_port(),
             "--dashboard-agent-grpc-port", _free_port()]
    cmd = [Path(sys.executable).parent / "ray", "start", *args, "--num-cpus", "1",
           "--disable-usage-stats", *ports]
    done = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]


# About 57 s (a head and a second node started with `ray start`): with it the default run took
# 626 s on 2 cores (fresh clone, quiet machine), over its 10 minutes; run it with -m slow.
@pytest.mark.slow
def test_readme_cluster_commands_with_token_authentication(tmp_path, roots):
    """README "On a cluster": RAY_AUTH_MODE=token and ray get-auth-token --generate on the
    head, ray start --head; the same mode and the head's token on the other node and the
    driver; ctsnas search --address HEAD:PORT."""
    head_env = roots.env(RAY_AUTH_MODE="token")
    temp = head_env["RAY_TMPDIR"]
    token = subprocess.run([str(Path(sys.executable).parent / "ray"), "get-auth-token",
                            "--generate"], env=head_env, capture_output=True, text=True,
                           timeout=60).stdout.strip()
    assert token
    port = _free_port()
    _ray_start(head_env, "--head", "--port", port, "--temp-dir", temp,
               "--include-dashboard", "false")
    node_env = {**roots.env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token), "RAY_TMPDIR": temp}
    _ray_start(node_env, "--address", f"127.0.0.1:{port}")
    address = ["--address", f"127.0.0.1:{port}"]
    no_token = subprocess.run([str(c) for c in SEARCH + ["--trials", 2, "--run-dir",
                                                         tmp_path / "r0", *address]],
                              env={**roots.env(), "RAY_TMPDIR": temp}, capture_output=True,
                              text=True, timeout=300)
    last = no_token.stderr.strip().splitlines()[-1]
    assert no_token.returncode == 2 and "RAY_AUTH_MODE=token" in last
    assert not (tmp_path / "r0").exists()
    driver_env = {**roots.env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token), "RAY_TMPDIR": temp}
    done = subprocess.run([str(c) for c in SEARCH + ["--trials", 2, "--run-dir",
                                                     tmp_path / "r1", "--json", *address]],
                          env=driver_env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = _rows(tmp_path / "r1" / "run.sqlite")
    assert len(rows) == 2
    with sqlite3.connect(tmp_path / "r1" / "run.sqlite") as con:
        assert {s for (s,) in con.execute("SELECT status FROM trials")} == {"ok"}


def test_trials_over_max_memory_are_recorded_and_the_search_goes_on(tmp_path, roots):
    """Also: a stale record of a Ray that is gone (``ray_current_cluster``) is not joined;
    the search starts its own."""
    run = tmp_path / "run"
    env = roots.env()
    stale = Path(env["RAY_TMPDIR"]) / "ray"
    stale.mkdir(parents=True)
    (stale / "ray_current_cluster").write_text("127.0.0.1:1")
    done = subprocess.run([str(c) for c in SEARCH + ["--trials", 2, "--run-dir", run,
                                                     "--max-memory", "300M"]],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    with sqlite3.connect(run / "run.sqlite") as con:
        rows = con.execute("SELECT status, error FROM trials").fetchall()
    assert len(rows) == 2 and {s for s, _ in rows} == {"out_of_memory"}
    assert all("estimated peak memory" in e and "> max_memory 0.29 GiB" in e for _, e in rows)
    assert (run / "references.json").is_file() and not (run / "best_test.json").exists()
