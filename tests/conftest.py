"""Test options: slow tests are skipped unless asked for (--runslow). Cluster tests run on a
real single-node SLURM that tests/cluster/slurm-up.sh starts (it needs root; CI is root) and
are skipped, with the script's one-line reason, when it cannot start one (or --no-cluster)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLUSTER_DIR = Path(__file__).parent / "cluster"

# The test process itself waits passively in OpenMP: it shares the machine with the jobs, servers
# and Snakemake runs it starts (and on CI or a workstation with anything else), and the spinning
# threads of the few tests that run several (test_cores.py) made them take a minute instead of a
# second there. libgomp reads the policy once, when torch loads it: so here, before any test
# module or conftest imports torch; the processes the tests start get the environment as it was.
if "torch" not in sys.modules and "OMP_WAIT_POLICY" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        import torch  # noqa: F401
    finally:
        del os.environ["OMP_WAIT_POLICY"]


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")
    parser.addoption(
        "--no-cluster", action="store_true", help="skip the cluster tests (no SLURM start)"
    )


def pytest_configure(config):
    """The jobs this session starts share cores among themselves (hnet.job.cores), not with
    hnet jobs running beside the test session on the same machine."""
    import tempfile

    os.environ["HNET_CORES_DIR"] = tempfile.mkdtemp(prefix="hnet-test-cores-")


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--runslow"):
        skip = pytest.mark.skip(reason="slow test: run with --runslow")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(skip)
    if config.getoption("--no-cluster"):
        skip = pytest.mark.skip(reason="cluster test: --no-cluster given")
        for item in items:
            if "cluster" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def slurm():
    """A running single-node SLURM (partition name), started for this session if needed and
    stopped afterwards if this session started it."""
    res = subprocess.run(
        ["bash", str(CLUSTER_DIR / "slurm-up.sh")], capture_output=True, text=True, timeout=600
    )
    if res.returncode != 0:
        lines = (res.stderr or res.stdout).strip().splitlines() or ["no output"]
        pytest.skip(f"no SLURM for the cluster tests: {lines[-1]}")
    started = "already" not in res.stdout + res.stderr
    yield "hnet"
    if started:
        subprocess.run(["bash", str(CLUSTER_DIR / "slurm-down.sh"), "--quiet"], timeout=120)


def _write_tiny_mnist(root) -> None:
    import numpy as np

    from hnet.data.idx import write_idx

    rng = np.random.default_rng(0)
    for name in ("MNIST", "FashionMNIST"):
        raw = root / name / "raw"
        for split, n in (("train", 60), ("t10k", 20)):
            write_idx(
                raw / f"{split}-images-idx3-ubyte.gz",
                rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            )
            write_idx(raw / f"{split}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))


@pytest.fixture(scope="session")
def _tiny_mnist_files(tmp_path_factory):
    """The files of ``tiny_mnist_root``, written once per session (jobs only read them)."""
    root = tmp_path_factory.mktemp("tiny-mnist")
    _write_tiny_mnist(root)
    return root


@pytest.fixture(scope="session")
def _tiny_data_files(tmp_path_factory):
    """The files of ``tiny_data_root``, written once per session (jobs only read them)."""
    from cifar_files import write_cifar

    root = tmp_path_factory.mktemp("tiny-data")
    _write_tiny_mnist(root)
    for name in ("CIFAR10", "CIFAR100"):
        write_cifar(root, name)
    return root


def _tiny_root(root, monkeypatch):
    from hnet.data import mnist

    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {"MNIST": (), "FashionMNIST": ()})
    monkeypatch.setattr(mnist, "EXPECTED_COUNTS", None)
    monkeypatch.delenv("HNET_DATA", raising=False)
    return root


@pytest.fixture
def tiny_mnist_root(_tiny_mnist_files, monkeypatch):
    """A data root with tiny MNIST and Fashion-MNIST (60 train / 20 test images, real idx
    format) so the real loading code runs; system dirs and sample-count checks are off. The
    files are shared by the session's tests: read them, never write into the root."""
    return _tiny_root(_tiny_mnist_files, monkeypatch)


@pytest.fixture
def tiny_data_root(_tiny_data_files, monkeypatch):
    """``tiny_mnist_root`` plus tiny CIFAR-10 and CIFAR-100 (real pickle format, 50/200 train
    images); jobs on it set ``data.check_counts=false``. Shared like ``tiny_mnist_root``."""
    return _tiny_root(_tiny_data_files, monkeypatch)


@pytest.fixture
def four_core_machine(monkeypatch, tmp_path):
    """A 4-core machine for hnet.job.cores: no dedicated-cores settings, leases in the test's
    own folder (tmp_path / "leases"), torch's thread count restored afterwards."""
    import os

    import torch

    from hnet.job.environment import DEDICATED

    before = torch.get_num_threads()
    for var in DEDICATED:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HNET_CORES_DIR", str(tmp_path / "leases"))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    yield
    torch.set_num_threads(before)
