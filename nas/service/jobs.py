"""The service's jobs: each search (or a query with ``train_top``) is a search driver process
(:mod:`nas.service.driver`) with its own run directory ``RUNS_ROOT/<id>``, so the run store,
exact resume and the one-writer lock hold as on the command line.

A job's record is ``job.json`` in its run directory (:func:`read_job`), written under a file
lock by the server (queued, starting, cancel requested, interrupted, resumed) and by the driver
(running, done, failed, cancelled). The state a client sees is derived from it and from the
driver's process: a job recorded ``starting``/``running`` whose driver is gone is
``interrupted`` (resumable with ``POST /searches/{id}/resume``). A restarted server therefore
finds its jobs again from the run directories alone.

States: ``queued`` (waiting for a free slot, ``max_jobs``), ``starting`` (driver launched,
checks and Ray start-up), ``running`` (trials), ``done``, ``failed`` (the error kept),
``cancelled`` (what finished stays in the store), ``interrupted`` (driver died).
"""
from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from filelock import FileLock

from ..engine.results import read_json, write_json
from ..engine.store import DB_NAME, RunStore

JOB_FILE = "job.json"
ACTIVE = ("starting", "running")
FINAL = ("done", "failed", "cancelled")
RESUMABLE = ("interrupted", "cancelled", "failed")
#: Seconds a cancelled driver gets to stop after SIGINT before its process group is killed.
CANCEL_GRACE = 30.0


class JobError(ValueError):
    """A request that does not fit the job's state: ``status`` is the HTTP code (404, 409)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def read_job(run_dir) -> dict:
    """The job record in ``run_dir`` ({} when there is none or it is unreadable)."""
    try:
        return read_json(Path(run_dir) / JOB_FILE) or {}
    except ValueError:
        return {}


def update_job(run_dir, **changes) -> dict:
    """Merge ``changes`` into ``run_dir``'s job record under its file lock (atomic write);
    returns the new record."""
    run_dir = Path(run_dir)
    with FileLock(run_dir / (JOB_FILE + ".lock")):
        job = {**read_job(run_dir), **changes}
        write_json(job, run_dir / JOB_FILE)
    return job


def driver_alive(pid, run_dir) -> bool:
    """Whether process ``pid`` lives and is the driver of ``run_dir`` (its command line names
    the directory: a reused PID is not mistaken for it); a zombie counts as dead."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return (stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
            and b"nas.service.driver" in cmdline and str(run_dir).encode() in cmdline)


def progress(run_dir) -> dict:
    """Trials done and failed and the best validation MSE so far, read from the run store
    without writing (zeros before the driver created it)."""
    if not (Path(run_dir) / DB_NAME).exists():
        return {"trials_done": 0, "trials_failed": 0, "best_val_mse": None}
    try:
        store = RunStore(run_dir, readonly=True)
        try:
            rows = store.trials()
        finally:
            store.close()
    except ValueError:
        return {"trials_done": 0, "trials_failed": 0, "best_val_mse": None}
    ok = [r["val_mse"] for r in rows if r["status"] == "ok"]
    return {"trials_done": len(rows), "trials_failed": len(rows) - len(ok),
            "best_val_mse": min(ok) if ok else None}


def new_id(data: str) -> str:
    """A job id: UTC time, the dataset's name (safe characters only) and 4 random hex digits."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(str(data)).stem)[:40] or "data"
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{name}-{secrets.token_hex(2)}"


class Jobs:
    """The jobs under ``root`` (one run directory each). ``max_jobs`` drivers run at once; the
    others wait ``queued``. ``start()`` launches the scheduler thread (a 1 s tick) that reaps
    drivers, records dead ones as ``interrupted`` and starts queued jobs."""

    def __init__(self, root, max_jobs: int = 1, tick: float = 1.0):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_jobs = max_jobs
        self.tick = tick
        self._children: dict = {}  # pid -> Popen, polled so that exited drivers are reaped
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.schedule()
        self._thread = threading.Thread(target=self._loop, name="ctsnas-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.schedule()
            except Exception as exc:  # noqa: BLE001 - the scheduler must outlive a bad record
                print(f"ctsnas serve: scheduler: {exc}", file=sys.stderr)

    def schedule(self) -> None:
        """Reap exited drivers, record dead ones, start queued jobs while slots are free."""
        with self._lock:
            for pid, child in list(self._children.items()):
                if child.poll() is not None:
                    del self._children[pid]
            jobs = [self._record(d) for d in self._dirs()]
            active = sum(j.get("state") in ACTIVE for j in jobs)
            for job in sorted((j for j in jobs if j.get("state") == "queued"),
                              key=lambda j: j.get("created", 0)):
                if active >= self.max_jobs:
                    break
                self._launch(self.root / job["id"])
                active += 1

    def _record(self, run_dir: Path) -> dict:
        """The job record, with a dead driver's ``starting``/``running`` written down as
        ``interrupted`` (``cancelled`` when a cancel was asked)."""
        job = read_job(run_dir)
        if job.get("state") in ACTIVE and not driver_alive(job.get("driver_pid"), run_dir):
            job = read_job(run_dir)  # the driver may have written its end meanwhile
            if job.get("state") in ACTIVE:
                job = update_job(run_dir, state="cancelled" if job.get("cancel_requested")
                                 else "interrupted", finished=time.time())
        return job

    def _dirs(self) -> list:
        return sorted(p.parent for p in self.root.glob(f"*/{JOB_FILE}"))

    def _launch(self, run_dir: Path) -> None:
        log = open(run_dir / "driver.log", "ab")
        child = subprocess.Popen([sys.executable, "-m", "nas.service.driver", str(run_dir)],
                                 stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True, cwd=os.getcwd())
        log.close()
        self._children[child.pid] = child
        update_job(run_dir, state="starting", driver_pid=child.pid, started=time.time(),
                   finished=None, error=None)

    # --- requests --------------------------------------------------------------------------
    def submit(self, kind: str, request: dict, config: dict) -> dict:
        """A new job of ``kind`` (``search`` or ``query``): ``request`` as the client sent it,
        ``config`` the checked options the driver runs. Queued, then started by
        :meth:`schedule`; returns its status."""
        job_id = new_id(config.get("data", "data"))
        run_dir = self.root / job_id
        run_dir.mkdir(parents=True)
        update_job(run_dir, id=job_id, kind=kind, request=request, config=config,
                   state="queued", created=time.time(), resumes=0, cancel_requested=False)
        self.schedule()
        return self.status(job_id)

    def run_dir(self, job_id: str) -> Path:
        """The run directory of ``job_id``.

        Raises:
            JobError: (404) no such job (an id is letters, digits, ``-``, ``_``, ``.``).
        """
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", job_id or "") or job_id.startswith("."):
            raise JobError(f"id: got {job_id!r}; allowed: a job id from GET /searches", 404)
        run_dir = self.root / job_id
        if not (run_dir / JOB_FILE).is_file():
            raise JobError(f"id: no job {job_id!r}; allowed: a job id from GET /searches", 404)
        return run_dir

    def status(self, job_id: str) -> dict:
        """``{id, kind, data, state, trials_done, trials_failed, trials_planned,
        best_val_mse, created, started, finished, elapsed_seconds, error}``."""
        run_dir = self.run_dir(job_id)
        with self._lock:
            job = self._record(run_dir)
        return summarise(job, run_dir)

    def list(self) -> list:
        """Every job's :meth:`status`, newest first."""
        with self._lock:
            jobs = [(self._record(d), d) for d in self._dirs()]
        return sorted((summarise(j, d) for j, d in jobs if j.get("id")),
                      key=lambda s: s["created"] or 0, reverse=True)

    def cancel(self, job_id: str) -> dict:
        """Ask the driver to stop (SIGINT: the trials in flight are dropped, the finished ones
        stay in the store); its process group is killed after :data:`CANCEL_GRACE` seconds.
        A queued job is cancelled at once.

        Raises:
            JobError: 404 unknown id; 409 the job already ended.
        """
        run_dir = self.run_dir(job_id)
        with self._lock:
            job = self._record(run_dir)
            if job["state"] == "queued":
                update_job(run_dir, state="cancelled", cancel_requested=True,
                           finished=time.time())
            elif job["state"] in ACTIVE:
                update_job(run_dir, cancel_requested=True)
                _interrupt(job["driver_pid"], run_dir)
            else:
                raise JobError(f"id: job {job_id} is {job['state']}; allowed: cancel a "
                               "queued, starting or running job", 409)
        return self.status(job_id)

    def resume(self, job_id: str) -> dict:
        """Queue an interrupted, cancelled or failed job again: its driver resumes the run
        store (finished trials are not re-run).

        Raises:
            JobError: 404 unknown id; 409 the job is queued, active or done.
        """
        run_dir = self.run_dir(job_id)
        with self._lock:
            job = self._record(run_dir)
            if job["state"] not in RESUMABLE:
                raise JobError(f"id: job {job_id} is {job['state']}; allowed: resume an "
                               f"{', '.join(RESUMABLE)} job", 409)
            update_job(run_dir, state="queued", cancel_requested=False,
                       resumes=job.get("resumes", 0) + 1, error=None)
        self.schedule()
        return self.status(job_id)


def _interrupt(pid: int, run_dir: Path) -> None:
    """SIGINT to the driver now, SIGKILL to its process group after the grace period."""
    try:
        os.kill(pid, signal.SIGINT)
    except OSError:
        return

    def kill_late():
        deadline = time.time() + CANCEL_GRACE
        while time.time() < deadline:
            if not driver_alive(pid, run_dir):
                return
            time.sleep(0.5)
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    threading.Thread(target=kill_late, daemon=True).start()


def summarise(job: dict, run_dir: Path) -> dict:
    """The client's view of a job record (see :meth:`Jobs.status`)."""
    config = job.get("config") or {}
    started, finished = job.get("started"), job.get("finished")
    end = finished if job.get("state") in FINAL + ("interrupted",) and finished else time.time()
    data = (job.get("request") or {}).get("data") or config.get("data")
    return {"id": job.get("id"), "kind": job.get("kind"), "data": data,
            "state": job.get("state"), "trials_planned": config.get("trials"),
            **progress(run_dir), "created": job.get("created"), "started": started,
            "finished": finished if job.get("state") not in ACTIVE else None,
            "elapsed_seconds": round(end - started, 1) if started else None,
            "resumes": job.get("resumes", 0), "error": job.get("error")}
