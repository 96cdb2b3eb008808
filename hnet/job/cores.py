"""Jobs started by hand on one machine share its cores.

A job started by hand runs as many threads as it has cores, and lets OpenMP's idle threads spin
for a moment between operations instead of sleeping: the fast choice when the job is alone (a
Split Fashion-MNIST job took 21.7 s spinning against 31.3 s sleeping, docs/performance.md,
"Jobs side by side"). Two such jobs on the same two cores, though, would spin four threads on
them and each take several times as long. So while it trains, every job holds a *lease*: a file
in one directory all hnet jobs of the machine use, naming the cores the job runs on, locked
(``flock``) by the job's process. The kernel drops the lock when the process ends, however it
ends, so a dead job's lease is recognised (and removed) by the next job that looks. Every few
seconds a job whose thread count is its to choose (default threads, cores not granted by a
scheduler: :func:`adapts`) counts the live leases on its cores and runs its share,
``cores // jobs`` threads (at least one). Jobs with a thread count fixed by the user or a
scheduler hold a lease too, so the others make room for them, but keep their count.

The thread count changes how sums are split between threads, so float rounding: a job whose
share changed while it ran is not bit-for-bit repeatable (metrics.json lists the changes as
``threads_shared``). Fix ``--threads`` (or ``OMP_NUM_THREADS``) for bit-for-bit runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch

from hnet.job.environment import dedicated

RECHECK_SECONDS = 2.0  # how often a sharing job counts its neighbours (a directory listing)
SUFFIX = ".lease"
STALE_TMP_SECONDS = 60.0  # an unnamed lease this old was left by a job that died making it


def lease_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``$HNET_CORES_DIR``, else ``hnet-cores`` in the system's temporary directory: one
    directory for every user's jobs (sticky and world-writable, like /tmp itself)."""
    return Path(environ.get("HNET_CORES_DIR") or Path(tempfile.gettempdir()) / "hnet-cores")


def adapts(threads: int, environ: Mapping[str, str] = os.environ) -> bool:
    """Does a job with config ``threads`` follow its share? Only with the default (0) and cores
    nobody granted it: a scheduler's or the user's thread budget is kept
    (:func:`~hnet.job.environment.dedicated`)."""
    return threads == 0 and not dedicated(environ)


def own_cores() -> frozenset[int]:
    try:
        return frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return frozenset(range(os.cpu_count() or 1))


class Lease:
    """This process's claim on ``cores``, held until :meth:`close` (or the process ends)."""

    def __init__(self, cores: frozenset[int], directory: Path) -> None:
        self.cores, self.dir = cores, directory
        if not directory.is_dir():
            directory.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):  # made by another user in the meantime
                directory.chmod(0o1777)
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        # Locked before it gets its name: no other job ever sees an unlocked live lease.
        tmp = directory / f".{name}.tmp"
        self.fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(self.fd, json.dumps(sorted(cores)).encode())
        self.path = directory / (name + SUFFIX)
        os.rename(tmp, self.path)

    def neighbours(self) -> int:
        """Live leases of other jobs whose cores overlap this one's (stale ones are removed)."""
        n = 0
        for path in self.dir.iterdir():
            if path.name.endswith(SUFFIX) and path != self.path:
                cores = live_cores(path)  # also removes a dead job's lease
                n += cores is not None and overlap(cores, self.cores)
            elif path.name.endswith(".tmp") and abandoned(path):
                live_cores(path)  # removed if its job died between creating and naming it
        return n

    def share(self) -> int:
        """Threads this job should run now: its cores divided among the jobs on them."""
        return max(1, len(self.cores) // (1 + self.neighbours()))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(self.fd)


def overlap(theirs: frozenset[int], ours: frozenset[int]) -> bool:
    """Empty ``theirs`` (a lease that could not be read) counts as overlapping: safe side."""
    return not theirs or bool(theirs & ours)


def abandoned(path: Path, now: float | None = None) -> bool:
    """An unnamed lease older than :data:`STALE_TMP_SECONDS`: a job makes, locks and names
    one within microseconds, so a younger one may be between creation and lock and must not be
    mistaken for a dead job's (taking its lock then would fail that job's lease)."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:
        return False
    return age > STALE_TMP_SECONDS


def live_cores(path: Path) -> frozenset[int] | None:
    """The cores a live lease names (empty when unreadable); None for a lease whose job has
    ended (removed here, where permissions allow) or that vanished meanwhile."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # its job holds it: live
            with contextlib.suppress(OSError, ValueError, TypeError):
                return frozenset(json.loads(os.read(fd, 1 << 16)))
            return frozenset()
        with contextlib.suppress(OSError):  # nobody holds it: its job has ended
            path.unlink()
        return None
    finally:
        os.close(fd)


class CoreShare:
    """A job's lease and, where it :func:`adapts`, its thread count following the share.

    ``update`` is called every training step and costs a clock read except every
    :data:`RECHECK_SECONDS`; ``changes`` lists ``[task, step, threads]`` where the count changed.
    """

    def __init__(self, threads: int, environ: Mapping[str, str] = os.environ) -> None:
        self.adaptive = adapts(threads, environ)
        self.changes: list[list[int]] = []
        self.next_check = 0.0
        try:
            self.lease: Lease | None = Lease(own_cores(), lease_dir(environ))
        except OSError as e:
            self.lease = None
            if self.adaptive:
                print(
                    f"hnet: cannot share this machine's cores with other hnet jobs ({e}); "
                    "running on all of them. Set HNET_CORES_DIR to a writable directory, or "
                    "--threads.",
                    file=sys.stderr,
                )

    def update(self, task: int, step: int) -> None:
        if not self.adaptive or self.lease is None or time.monotonic() < self.next_check:
            return
        self.next_check = time.monotonic() + RECHECK_SECONDS
        n = self.lease.share()
        if n != torch.get_num_threads():
            torch.set_num_threads(n)
            self.changes.append([task, step, n])

    def close(self) -> None:
        if self.lease is not None:
            self.lease.close()
            self.lease = None


@contextlib.contextmanager
def shared_cores(threads: int) -> Iterator[CoreShare]:
    """Hold a lease on this process's cores for the ``with`` block (see the module doc)."""
    share = CoreShare(threads)
    try:
        yield share
    finally:
        share.close()
