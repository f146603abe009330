"""One writer per run directory: an OS-level lock (``filelock``) held by the driver of a search
or a seed generation, with the holder's PID in a side file so a refused second driver can name
it. The lock is released by the OS when its holder dies, even by SIGKILL.
"""
from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock, Timeout

from search_spaces.learner.storage import write_atomic

LOCK_NAME = ".ctsnas.lock"
PID_NAME = ".ctsnas.lock.pid"


def holder_pid(run_dir) -> str:
    """The PID written by the driver holding ``run_dir`` ("unknown" when unreadable)."""
    try:
        return (Path(run_dir) / PID_NAME).read_text().strip() or "unknown"
    except OSError:
        return "unknown"


class RunLock:
    """Exclusive lock on ``run_dir`` (created if missing); a context manager.

    ``wait``: seconds to wait for another holder (0: refuse at once; None: wait forever).

    Raises:
        ValueError: (on enter) another driver holds the lock past ``wait``, naming its PID;
            the directory cannot be created or written.
    """

    def __init__(self, run_dir, wait: float | None = 0):
        self.run_dir = Path(run_dir)
        self.wait = wait
        self._lock = None

    def __enter__(self) -> RunLock:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(self.run_dir / LOCK_NAME)
            self._lock.acquire(timeout=-1 if self.wait is None else self.wait)
        except Timeout:
            raise ValueError(f"run_dir: {self.run_dir} is in use by another search (PID "
                             f"{holder_pid(self.run_dir)}); allowed: wait for it to end (or "
                             "wait_lock=SECONDS), or another directory") from None
        except OSError as exc:
            raise ValueError(f"run_dir: cannot write {self.run_dir} ({exc.strerror or exc}); "
                             "allowed: a directory you can write") from None
        write_atomic(str(os.getpid()).encode(), self.run_dir / PID_NAME)
        return self

    def __exit__(self, *exc) -> None:
        (self.run_dir / PID_NAME).unlink(missing_ok=True)
        self._lock.release()
