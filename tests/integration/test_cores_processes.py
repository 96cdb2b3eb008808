"""A dead job's lease stops counting: a real process holding a lease is killed (moved here
from tests/unit/test_cores.py: it starts a Python process that imports torch)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from hnet.job.cores import Lease

FOUR = frozenset({0, 1, 2, 3})


pytestmark = pytest.mark.usefixtures("four_core_machine")  # tests/conftest.py


def test_a_dead_jobs_lease_stops_counting_and_is_removed(tmp_path):
    """The kernel drops a process's flock however it ends (here: SIGKILL)."""
    d = tmp_path / "leases"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import sys, time
                from pathlib import Path
                from hnet.job.cores import Lease
                lease = Lease(frozenset({{0, 1, 2, 3}}), Path({str(d)!r}))
                print(lease.path, flush=True)
                time.sleep(600)
            """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        child_lease = child.stdout.readline().strip()
        a = Lease(FOUR, d)
        assert a.share() == 2
        assert os.path.exists(child_lease)
    finally:
        child.kill()
        child.wait()
    assert a.share() == 4
    assert not os.path.exists(child_lease)
