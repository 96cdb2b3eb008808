"""SIGTERM (cluster preemption) and SIGINT (Ctrl-C) as a flag the training loop polls.

A signal that arrives mid-step must not kill the process mid-write: the loop checks the flag
after every step, saves a checkpoint and stops with :class:`~hnet.errors.JobInterrupted`
(:meth:`StopFlag.interrupt`, one message for a job and a pack of seeds).
"""

from __future__ import annotations

import signal
import threading
from typing import Any, NoReturn

from hnet.errors import JobInterrupted


class StopFlag:
    """Context manager: while active, SIGTERM/SIGINT set ``signum`` instead of killing."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def interrupt(self, when: str, saved: str) -> NoReturn:
        """Stop the job once its checkpoints are saved: ``when`` it stopped ("at task 2, step
        10"), where the checkpoints were ``saved``; the same message for one job and a pack."""
        raise JobInterrupted(
            f"Stopped by signal {self.signum} {when}; {saved}. Run the same command to resume.",
            self.signum,  # set: called only after a signal arrived
        )
