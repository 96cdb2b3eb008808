"""Servers the tests start (MLflow, on SQLite or PostgreSQL): wait until one answers, stop it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


def wait_healthy(uri: str, proc: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    """Return once ``uri``/health answers; fail the test with the server log's tail if the
    server exits first or does not answer within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=1)
            return
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"server at {uri} exited: {log.read_text()[-2000:]}")
            time.sleep(0.5)
    pytest.fail(f"server at {uri} did not answer within {seconds:.0f} s")


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (started with ``start_new_session=True``), then
    SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
