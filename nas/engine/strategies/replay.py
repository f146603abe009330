"""Exact resume of an asynchronous strategy: the ask/tell log of a run and its replay.

What a model-guided strategy asks next depends on which results it had been told at that
moment, and with several workers results arrive in completion order, interleaved with the
asks. Telling a resumed strategy the stored rows in trial order would not restore that
interleaving, so the runner appends every ask (trial index and spec hash) and every tell
(trial index) to ``strategy_log.jsonl`` in the run directory, and a resumed run replays the
log: the same asks and tells in the same order, each replayed ask checked against the logged
hash. Trials asked but not in the store (in flight when the driver died) are run again
first; rows stored but not yet logged as told (the driver died between the two writes) are
told next, in completion order, as the uninterrupted run would have done. A store written
before the log existed (a random search of an earlier version, whose asks do not depend on
tells) is resumed by asking up to its last stored trial and telling each stored one at once.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

LOG_NAME = "strategy_log.jsonl"


class AskTellLog:
    """The append-only ask/tell log of the run in ``run_dir`` (one JSON object a line:
    ``{"ask": trial, "hash": spec_hash}`` (with ``"rung": k`` for an ASHA rung k > 0) or
    ``{"tell": trial}``), flushed line by line so a driver killed at any point loses at most
    the line being written."""

    def __init__(self, run_dir):
        self.path = Path(run_dir) / LOG_NAME

    def exists(self) -> bool:
        return self.path.is_file()

    def events(self) -> list:
        """The logged events in order; a torn last line (killed mid-write) is dropped."""
        if not self.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break
        return out

    def _append(self, event: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def ask(self, trial: int, spec_hash: str, rung: int = 0) -> None:
        self._append({"ask": trial, "hash": spec_hash, **({"rung": rung} if rung else {})})

    def tell(self, trial: int) -> None:
        self._append({"tell": trial})


def replay(strategy, log: AskTellLog, rows: list) -> tuple:
    """Bring ``strategy`` (new, same arguments as the logged run's) to the state of the run:
    replay the log's asks (one spec each) and tells, then tell the stored rows the log has not
    (completion order) and log those tells.

    Args:
        rows: the run store's trials (dicts with ``trial``, ``spec_hash``, ``finished_at``).

    Returns:
        (unfinished, asked): ``(trial, spec_hash, spec, rung)`` of the asked trials the store
        does not hold, in trial order, and the number of asks replayed.

    Raises:
        ValueError: a replayed ask differs from the logged one (the strategy or its options
            changed), or the log tells a trial the store does not hold.
    """
    by_trial = {r["trial"]: r for r in rows}
    if rows and not log.exists():
        return _replay_unlogged(strategy, log, by_trial)
    asked, told = {}, set()
    for event in log.events():
        if "ask" in event:
            job = job_of(strategy.ask(1))
            if job is None or (job[0], job[2]) != (event["hash"], event.get("rung", 0)):
                got = job[0] if job else None
                raise ValueError(f"strategy: asked {got} as trial {event['ask']} where the run "
                                 f"in {log.path.parent} asked {event['hash']}; allowed: the "
                                 "run's own strategy and options when resuming")
            asked[event["ask"]] = job
        elif event["tell"] in by_trial:
            strategy.tell(asked[event["tell"]][1], by_trial[event["tell"]])
            told.add(event["tell"])
        else:
            raise ValueError(f"run_dir: {log.path.name} tells trial {event['tell']}, which "
                             f"{log.path.parent} does not hold; allowed: a log and store of "
                             "one run")
    late = sorted((r for r in rows if r["trial"] in asked and r["trial"] not in told),
                  key=lambda r: (r["finished_at"] or 0, r["trial"]))
    for row in late:
        strategy.tell(asked[row["trial"]][1], row)
        log.tell(row["trial"])
    unfinished = [(i, *job) for i, job in sorted(asked.items()) if i not in by_trial]
    return unfinished, len(asked)


def job_of(asked: list):
    """The first of a strategy's asks as ``(spec_hash, spec, rung)`` (rung 0 for a strategy
    that asks ``(spec_hash, spec)`` pairs), None for an empty ask."""
    if not asked:
        return None
    h, spec, *rung = asked[0]
    return h, spec, (rung[0] if rung else 0)


def _replay_unlogged(strategy, log: AskTellLog, by_trial: dict) -> tuple:
    """Replay a run stored without a log: ask one spec per trial up to the last stored one,
    telling each the store holds right after its ask; both are logged from now on.

    Raises:
        ValueError: a stored trial's spec differs from the one asked at its index.
    """
    unfinished, asked = [], 0
    for i in range(max(by_trial) + 1):
        job = job_of(strategy.ask(1))
        if job is None:
            break
        (h, spec, rung), asked = job, asked + 1
        log.ask(i, h, rung)
        row = by_trial.get(i)
        if row is None:
            unfinished.append((i, h, spec, rung))
            continue
        if row["spec_hash"] != h:
            raise ValueError(f"strategy: asked {h} as trial {i} where the run in "
                             f"{log.path.parent} holds {row['spec_hash']}; allowed: the run's "
                             "own strategy and options when resuming")
        strategy.tell(spec, row)
        log.tell(i)
    return unfinished, asked
