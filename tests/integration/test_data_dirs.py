"""Data directories through ``hnet train`` (issue 15): an unreadable directory as a real non-root
user, and an explicit directory with a broken Fashion-MNIST beside Debian's real copy.

Tests run as root, whom ``chmod 000`` does not stop, so the permission test drops to ``nobody``
with ``setpriv`` (skipped where that is impossible); ``tests/unit/test_data.py`` covers the same
message in-process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli import env, train_argv

from hnet.data.idx import write_idx

REAL_FMNIST = Path("/usr/share/datasets/fashion-mnist")


def can_drop_to_nobody() -> str | None:
    """None if ``setpriv`` can run this interpreter as nobody, else the reason it cannot."""
    if os.geteuid() != 0:
        return "not root: cannot switch to another user (and chmod already applies)"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    probe = subprocess.run(
        [*as_nobody(), sys.executable, "-c", "import hnet"],
        env=env(),
        capture_output=True,
        cwd="/",
    )
    if probe.returncode != 0:
        return f"nobody cannot run this interpreter or import hnet: {probe.stderr[-200:]!r}"
    return None


def as_nobody() -> list[str]:
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


@pytest.fixture
def shared_tmp(tmp_path):
    """A temp dir the user nobody can enter (pytest's own is root-only)."""
    path = tmp_path / "shared"
    path.mkdir()
    for p in (path, *path.parents):
        if p == Path("/tmp") or p == Path(p.anchor):
            break
        p.chmod(p.stat().st_mode | 0o755)
    path.chmod(0o1777)
    return path


def one_paragraph(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_unreadable_data_dir_as_non_root_user(shared_tmp):
    reason = can_drop_to_nobody()
    if reason:
        pytest.skip(reason)
    locked = shared_tmp / "locked"
    (locked / "MNIST" / "raw").mkdir(parents=True)
    locked.chmod(0o000)
    try:
        argv = train_argv(
            shared_tmp / "out",
            "--data-dir",
            str(locked),
            "--no-tracking",
            benchmark="split_mnist",
            sets={"data.download": "false"},
        )
        run = subprocess.run(
            [*as_nobody(), *argv], env=env(), capture_output=True, text=True, cwd="/"
        )
    finally:
        locked.chmod(0o755)
    assert run.returncode == 2, run.stderr
    line = one_paragraph(run.stderr)
    assert line.startswith(f"hnet train: error: Cannot read the data directory {locked} ")
    assert "(Permission denied" in line and f"chmod u+rx {locked}" in line


@pytest.mark.skipif(
    not (REAL_FMNIST / "train-images-idx3-ubyte.gz").exists(),
    reason="dataset-fashion-mnist is not installed",
)
def test_broken_explicit_dir_never_falls_back_to_debians_copy(tmp_path):
    """The fault of issue 15: a broken copy in --data-dir used to be replaced silently by the
    system's, written into the user's directory."""
    raw = tmp_path / "mine" / "FashionMNIST" / "raw"
    rng = np.random.default_rng(0)
    for split, n in (("train", 60000), ("t10k", 10000)):
        write_idx(raw / f"{split}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
        write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), np.uint8))
    bad = raw / "train-images-idx3-ubyte"
    with bad.open("r+b") as f:
        f.truncate(1000)
    before = {p.name: p.stat() for p in raw.iterdir()}
    run = subprocess.run(
        train_argv(
            tmp_path / "out",
            "--data-dir",
            str(tmp_path / "mine"),
            "--no-tracking",
            benchmark="split_fmnist",
            sets={"data.download": "false"},  # no network in tests; the unit tests fake one
        ),
        env=env(HNET_DATA=None),
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2, run.stderr
    line = one_paragraph(run.stderr)
    assert f"{bad}: truncated" in line
    assert line.endswith(f"drop --data-dir (data.dir) to use the copy found at {REAL_FMNIST}.")
    after = {p.name: p.stat() for p in raw.iterdir()}
    assert after.keys() == before.keys()
    assert all(after[k].st_mtime_ns == before[k].st_mtime_ns for k in before)
