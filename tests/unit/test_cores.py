"""Jobs started by hand share the cores they run on: each holds a lease, a job with default
threads runs ``cores // jobs`` threads, and a dead job's lease stops counting (with a real
process killed: tests/integration/test_cores_processes.py)."""

from __future__ import annotations

import fcntl
import os
import time

import pytest
import torch

from hnet.job.cores import STALE_TMP_SECONDS, CoreShare, Lease

FOUR = frozenset({0, 1, 2, 3})


pytestmark = pytest.mark.usefixtures("four_core_machine")  # tests/conftest.py


def test_jobs_on_the_same_cores_split_them_and_take_them_back(tmp_path):
    d = tmp_path / "leases"
    a = Lease(FOUR, d)
    assert a.share() == 4
    b = Lease(FOUR, d)
    c = Lease(frozenset({0}), d)
    assert (a.share(), b.share()) == (1, 1)  # 4 cores // 3 jobs
    c.close()
    assert (a.share(), b.share()) == (2, 2)
    b.close()
    assert a.share() == 4
    assert [p.name for p in d.iterdir()] == [a.path.name]


def test_jobs_on_other_cores_do_not_count(tmp_path):
    d = tmp_path / "leases"
    a, b = Lease(frozenset({0, 1}), d), Lease(frozenset({2, 3}), d)
    assert (a.share(), b.share()) == (2, 2)


def test_an_unnamed_lease_is_left_alone_while_young_and_removed_when_abandoned(tmp_path):
    """A job between creating its lease file and locking it must not lose it to a neighbour's
    clean-up; one left by a job that died there goes once it is old."""
    d = tmp_path / "leases"
    a = Lease(FOUR, d)
    young, old = d / ".1-aa.tmp", d / ".2-bb.tmp"
    young.write_text("[0]")
    old.write_text("[0]")
    os.utime(old, (time.time() - 2 * STALE_TMP_SECONDS,) * 2)
    assert a.share() == 4  # neither counts as a job
    assert young.exists() and not old.exists()


def test_an_unreadable_live_lease_counts_as_a_neighbour(tmp_path):
    d = tmp_path / "leases"
    a = Lease(FOUR, d)
    odd = d / "12345-garbage.lease"
    odd.write_text("not json")
    fd = os.open(odd, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held, as its job would
    try:
        assert a.share() == 2
    finally:
        os.close(fd)
    assert a.share() == 4  # released: a dead job's lease
    assert not odd.exists()


def test_a_default_thread_job_follows_its_share_and_records_it(tmp_path):
    share = CoreShare(0)
    other = CoreShare(2)  # a count fixed by hand: kept, but it holds a lease
    try:
        torch.set_num_threads(4)
        share.update(0, 0)
        assert torch.get_num_threads() == 2
        other.update(0, 0)
        assert torch.get_num_threads() == 2  # the fixed job does not touch the threads
        other.close()
        share.update(0, 1)  # within the recheck interval: not counted again
        assert torch.get_num_threads() == 2
        share.next_check = 0.0
        share.update(1, 5)
        assert torch.get_num_threads() == 4
        assert share.changes == [[0, 0, 2], [1, 5, 4]]
    finally:
        share.close()
        other.close()
    assert list((tmp_path / "leases").iterdir()) == []


@pytest.mark.parametrize(
    ("threads", "env"),
    [(2, {}), (0, {"SLURM_JOB_ID": "7"}), (0, {"HNET_DEDICATED_CORES": "1"})],
)
def test_granted_or_fixed_threads_are_kept(monkeypatch, threads, env):
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    neighbour = CoreShare(0)
    share = CoreShare(threads)
    try:
        torch.set_num_threads(3)
        share.update(0, 0)
        assert torch.get_num_threads() == 3
        assert share.changes == []
    finally:
        share.close()
        neighbour.close()


def test_without_a_usable_directory_the_job_says_so_and_keeps_its_threads(
    monkeypatch, tmp_path, capsys
):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("HNET_CORES_DIR", str(blocker / "leases"))
    share = CoreShare(0)
    torch.set_num_threads(3)
    share.update(0, 0)
    assert torch.get_num_threads() == 3
    assert "cannot share this machine's cores" in capsys.readouterr().err
    share.close()


@pytest.mark.parametrize("seeds", [[0], [0, 1]], ids=["job", "packed"])
def test_a_job_beside_another_runs_its_share_and_says_so_in_metrics(tmp_path, seeds):
    """One lease per process, packed or not; the job gives way from its first step and the
    thread counts it ran with are in each seed's metrics.json."""
    from hnet import config
    from hnet.job.packed import run_packed

    neighbour = Lease(FOUR, tmp_path / "leases")  # another job on the same cores
    torch.set_num_threads(4)
    cfgs = [
        config.resolve("split_digits", "hnet", seed=s, overrides={"train.iters": 2}) for s in seeds
    ]
    assert cfgs[0]["threads"] == 0
    results = run_packed(cfgs, [tmp_path / f"s{s}" for s in seeds], progress=False)
    neighbour.close()
    for res in results:
        assert res["threads"] == 2
        assert res["threads_shared"] == [[0, 0, 2]]
    assert [p.name for p in (tmp_path / "leases").iterdir()] == []  # the job's lease is gone


def test_a_job_alone_keeps_its_threads_and_its_metrics_say_nothing(tmp_path):
    from hnet import config
    from hnet.job.run import run_job

    torch.set_num_threads(4)
    cfg = config.resolve("split_digits", "hnet", overrides={"train.iters": 2})
    res = run_job(cfg, tmp_path / "run", progress=False)
    assert res["threads"] == 4 and "threads_shared" not in res
