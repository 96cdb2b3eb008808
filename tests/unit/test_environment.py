"""Default threads follow the cores a process was given, not the machine's core count."""

from __future__ import annotations

import os

import pytest
import torch

from hnet.job.environment import apply_threads, available_cores


@pytest.fixture(autouse=True)
def _keep_threads(monkeypatch):
    before = torch.get_num_threads()
    for var in ("SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    yield
    torch.set_num_threads(before)


def test_available_cores_is_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
    assert available_cores() == 6


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SLURM_CPUS_PER_TASK": "2"}, 2),
        ({"OMP_NUM_THREADS": "3"}, 3),
        ({"SLURM_CPUS_PER_TASK": "4", "OMP_NUM_THREADS": "1"}, 1),
        ({"SLURM_CPUS_PER_TASK": "64"}, 6),  # a grant never exceeds the affinity mask
        ({"OMP_NUM_THREADS": "garbage"}, 6),
        ({"OMP_NUM_THREADS": "0"}, 6),
    ],
)
def test_scheduler_grants_narrow_the_mask(monkeypatch, env, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(6)))
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert available_cores() == expected


def test_apply_threads_defaults_to_available_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert apply_threads(0) == 1
    assert torch.get_num_threads() == 1


def test_explicit_threads_win(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert apply_threads(2) == 2
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize(
    ("env", "threads", "expected"),
    [
        ({}, None, None),  # by hand, default threads: shares the cores by lease, so may spin
        ({}, 0, None),
        ({}, 2, "PASSIVE"),  # a count fixed by hand cannot make room: its threads sleep
        ({"OMP_WAIT_POLICY": "ACTIVE"}, 2, "ACTIVE"),  # the user's setting wins
        ({"OMP_WAIT_POLICY": "PASSIVE", "SLURM_JOB_ID": "7"}, None, "PASSIVE"),
        ({"SLURM_JOB_ID": "7"}, 2, None),  # a scheduler's cores: OpenMP's own default
        ({"HNET_DEDICATED_CORES": "1"}, 1, None),  # the study's Snakemake jobs
        ({"OMP_NUM_THREADS": "2"}, 2, None),  # a thread budget the user set
        ({"SLURM_JOB_ID": " "}, 2, "PASSIVE"),  # blank is not set
    ],
)
def test_cli_lets_openmp_threads_spin_unless_fixed_by_hand_on_shared_cores(
    monkeypatch, env, threads, expected
):
    """Jobs side by side must not spin on each other's cores; a job alone should not pay a
    kernel wake-up per parallel operation. The CLI decides after parsing, before torch loads
    OpenMP in the subcommand (here: one that fails on its benchmark name)."""
    from hnet.cli import main
    from hnet.job.environment import DEDICATED

    for var in ("OMP_WAIT_POLICY", *DEDICATED):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    argv = ["train", "-b", "no_such_benchmark", "--no-tracking"]
    assert main(argv + ([] if threads is None else ["--threads", str(threads)])) == 2
    assert os.environ.get("OMP_WAIT_POLICY") == expected


def test_allocator_tuning_applies_on_glibc_and_yields_to_user_settings(monkeypatch):
    import platform

    from hnet.fast.cpu import tune_allocator

    for k in [k for k in os.environ if k.startswith("MALLOC_")]:
        monkeypatch.delenv(k)
    glibc = platform.libc_ver()[0] == "glibc"
    assert tune_allocator() is glibc
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")  # the user tunes malloc: hnet keeps out
    assert tune_allocator() is False


def test_subnormal_flushing_changes_only_values_below_the_normal_range(monkeypatch):
    """``flush_denormals`` (hnet.fast.cpu) turns subnormal results into 0 and leaves every
    normal float as it is; ``HNET_DENORMALS=keep`` opts out."""
    from hnet.fast.cpu import flush_denormals

    monkeypatch.setenv("HNET_DENORMALS", "keep")
    assert flush_denormals() is False
    monkeypatch.delenv("HNET_DENORMALS")
    normal = torch.tensor([2e-38, 3.0, -2e-30])  # all in float32's normal range
    torch.set_flush_denormal(False)
    try:
        kept = (normal[:1] * 0.01).item()  # 2e-40: subnormal
    finally:
        applied = flush_denormals()  # the mode hnet jobs run in, as before this test
    if not applied:
        pytest.skip("this CPU has no flush-to-zero mode")
    assert kept != 0.0
    assert (normal[:1] * 0.01).item() == 0.0  # the same product, flushed
    assert torch.equal(normal * 1.0, normal)  # normal values are untouched
