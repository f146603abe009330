"""A job's driver process: ``python -m nas.service.driver RUN_DIR`` runs the job recorded in
``RUN_DIR/job.json`` (:mod:`nas.service.jobs`) and records how it ended.

A ``search`` job is :func:`nas.engine.runner.search` with ``resume=True`` (a first start finds
no store and begins; a restart continues the store: finished trials are not re-run), holding
the run directory's lock. A ``query`` job is :func:`nas.zeroshot.query.query` with its
``train_top`` trained in the run directory; its result goes to ``query.json``. SIGINT or
SIGTERM stops the job as ``cancelled``; an error is recorded as ``failed`` with its one-line
message. Exit codes: 0 done, 1 failed, 130 cancelled.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from ..engine.results import write_json
from .jobs import update_job


def one_line(exc: BaseException) -> str:
    """An error as one line of at most 600 characters (ValueErrors name their field)."""
    text = " ".join(str(exc).split())
    text = text if isinstance(exc, ValueError) else f"{type(exc).__name__}: {text}"
    return text if len(text) < 600 else text[:597] + "..."


def run(run_dir: Path, job: dict) -> None:
    """Run ``job`` in ``run_dir`` (raises what the search or query raises)."""
    config = job["config"]
    if job["kind"] == "search":
        from ..engine.runner import search
        from ..zeroshot.guidance import strategy_inputs

        search(config, run_dir, resume=True, progress=False, guidance=strategy_inputs)
    else:
        from ..zeroshot.query import query

        write_json(query(config, run_dir), run_dir / "query.json")


def _stop(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    run_dir = Path((argv or sys.argv[1:])[0])
    signal.signal(signal.SIGTERM, _stop)
    job = update_job(run_dir, state="running", driver_pid=os.getpid())
    try:
        run(run_dir, job)
    except KeyboardInterrupt:
        update_job(run_dir, state="cancelled", finished=time.time())
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job
        update_job(run_dir, state="failed", error=one_line(exc), finished=time.time())
        return 1
    update_job(run_dir, state="done", finished=time.time())
    return 0


if __name__ == "__main__":
    sys.exit(main())
