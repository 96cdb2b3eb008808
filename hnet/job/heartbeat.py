"""heartbeat.json: where a run is and whether its process still lives, for ``hnet status``.

A study's user asks which cells are training and how far they are. The checkpoint holds the
position but is a torch file (slow to read, and only written at task ends), and a killed job
leaves nothing that says it died. So every training process keeps, in each run directory it
trains, a small JSON record::

    {"state": "running", "host": "node7", "pid": 4711, "boot_ticks": 123456,
     "started": 1765000000.0, "updated": 1765000123.4, "beat_seconds": 5,
     "task": 2, "step": 1200, "iters": [2000, 2000, 2000, 2000, 2000],
     "start": [1, 0], "checkpoint": [2, 0]}

``task`` and ``step`` are 0-based (the next step to take); ``start`` is where this attempt began,
``checkpoint`` where a rerun would resume (null: from the beginning). A daemon thread rewrites
the record every :data:`BEAT_SECONDS` (temp file + rename, no fsync: a lost beat costs nothing),
so data loading and long evaluations beat too; the loop only sets two integers per step. The
record ends as ``stopped`` (a signal: the checkpoint is saved), ``failed`` or ``done``.

Reading (:func:`read`, :func:`alive`) is standard library only, so ``hnet status`` imports no
torch. A ``running`` record is believed while it is fresh (updated less than
:data:`STALE_SECONDS` ago, which allows for a busy shared file system and clocks a little
apart between nodes); on the reader's own host a dead pid (or one reused by another process,
told apart by its start time) ends it at once, as after ``kill -9``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hnet.errors import JobInterrupted
from hnet.rundir import HEARTBEAT

BEAT_SECONDS = 5.0  # how often a training process rewrites its records
STALE_SECONDS = 120.0  # a running record older than this belongs to a dead process
RUNNING, STOPPED, FAILED, DONE = "running", "stopped", "failed", "done"


def boot_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux /proc), which tells a live
    process from a later one that got the same pid; None elsewhere or when it is gone (a
    zombie, killed but not yet reaped, is gone: where no init reaps orphans, as in some
    containers, zombies stay for good)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


class Heartbeat:
    """The record of one run directory, kept by the process training it."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / HEARTBEAT
        self.state = RUNNING
        self.pid = os.getpid()
        self.record: dict[str, Any] = {
            "state": RUNNING,
            "host": socket.gethostname(),
            "pid": self.pid,
            "boot_ticks": boot_ticks(self.pid),
            "started": time.time(),
            "beat_seconds": BEAT_SECONDS,
            "iters": None,
            "start": None,
            "checkpoint": None,
        }
        self.task, self.step = 0, 0
        self.lock = threading.Lock()

    def at(self, task: int, step: int) -> None:
        """Where the loop is (called every step: two assignments, no I/O)."""
        self.task, self.step = task, step

    def begin(self, iters: list[int], task: int, step: int, resumed: bool) -> None:
        """Set up (the step counts are known) and restored: this attempt starts here."""
        self.record["iters"] = list(iters)
        self.record["start"] = [task, step]
        self.record["checkpoint"] = [task, step] if resumed else None
        self.at(task, step)
        self.write()

    def checkpointed(self, task: int, step: int) -> None:
        """A checkpoint at ``task``, ``step`` was saved: a rerun resumes there."""
        self.record["checkpoint"] = [task, step]
        self.at(task, step)
        self.write()

    def end(self, state: str) -> None:
        self.state = state
        self.write()

    def write(self) -> None:
        """Best effort: a heartbeat never fails a job (a full disk shows up elsewhere)."""
        with self.lock:
            record = self.record | {
                "state": self.state,
                "updated": time.time(),
                "task": self.task,
                "step": self.step,
            }
            tmp = self.path.with_name(f".{HEARTBEAT}.{self.pid}.tmp")
            with contextlib.suppress(OSError):
                tmp.write_text(json.dumps(record) + "\n")
                os.replace(tmp, self.path)


class Beats:
    """Context manager: the records of the run directories one process trains, rewritten
    every :data:`BEAT_SECONDS` by a daemon thread; on exit each ends as ``done``, ``stopped``
    (:class:`~hnet.errors.JobInterrupted`) or ``failed``, unless the job already said so."""

    def __init__(self, outs: list[Path]) -> None:
        self.beats = [Heartbeat(out) for out in outs]
        self.quit = threading.Event()
        self.thread = threading.Thread(target=self._run, name="hnet-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self.quit.wait(BEAT_SECONDS):
            for beat in self.beats:
                if beat.state == RUNNING:
                    beat.write()

    def __enter__(self) -> list[Heartbeat]:
        for beat in self.beats:
            beat.write()
        self.thread.start()
        return self.beats

    def __exit__(self, kind: type | None, *exc: Any) -> None:
        self.quit.set()
        self.thread.join()
        if kind is None:
            state = DONE
        elif issubclass(kind, (JobInterrupted, KeyboardInterrupt)):
            state = STOPPED
        else:
            state = FAILED
        for beat in self.beats:
            if beat.state == RUNNING:
                beat.end(state)


# -- reading (hnet status) ------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """A heartbeat record as read back; positions are 0-based (task, step) pairs."""

    state: str
    host: str
    pid: int
    boot_ticks: int | None
    started: float
    updated: float
    task: int
    step: int
    iters: list[int] | None
    start: tuple[int, int] | None
    checkpoint: tuple[int, int] | None


def read(run_dir: Path) -> Record | None:
    """The run's heartbeat record, or None (none written, or unreadable: a run from before
    heartbeats, or a file system mid-rename)."""
    try:
        r = json.loads((Path(run_dir) / HEARTBEAT).read_text())
        return Record(
            state=str(r["state"]),
            host=str(r["host"]),
            pid=int(r["pid"]),
            boot_ticks=r.get("boot_ticks"),
            started=float(r["started"]),
            updated=float(r["updated"]),
            task=int(r["task"]),
            step=int(r["step"]),
            iters=[int(n) for n in r["iters"]] if r.get("iters") else None,
            start=tuple(r["start"]) if r.get("start") else None,
            checkpoint=tuple(r["checkpoint"]) if r.get("checkpoint") else None,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def alive(record: Record, now: float, host: str | None = None) -> bool:
    """Is the process that wrote a ``running`` record still training? Fresh records are
    believed, except on the reader's own ``host`` where the pid is checked directly."""
    if record.state != RUNNING or now - record.updated > STALE_SECONDS:
        return False
    if record.host != (host or socket.gethostname()):
        return True
    if not Path("/proc").is_dir():  # no process table to read the start time from
        return _pid_exists(record.pid)
    ticks = boot_ticks(record.pid)  # None: the process is gone
    return ticks is not None and record.boot_ticks in (None, ticks)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
