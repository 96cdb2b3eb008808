"""Packed seeds equal their unpacked jobs: the cases beyond the unit tier's (hnet CL1 and
finetune CL3 in tests/unit/test_packed.py) — the gram term on the stack, class-incremental
hnet, an unchunked hypernetwork and scratch's fresh network per task."""

from __future__ import annotations

import json

import pytest
from packed_runs import assert_same_run, cfgs

from hnet.job.packed import run_packed
from hnet.job.run import run_job


@pytest.mark.parametrize(
    ("method", "scenario", "size", "iters", "over"),
    [
        ("hnet", "cl1", None, 30, {"hnet.reg_impl": "gram"}),  # the gram term on the stack
        ("hnet", "cl3", None, 30, {}),
        # an unchunked HMLP: a large output layer, fewer steps. One Adam for the run: a fresh
        # Adam per task (the default) turns its rounding-level strays into full steps at every
        # task start, and by task 4 the losses are ~1e-2 apart; the rows above pack the reset.
        ("hnet", "cl1", "full", 10, {"hnet.reset_optimizer": False}),
        ("scratch", "cl1", None, 30, {}),  # a fresh net and Adam per task
    ],
)
def test_packed_seeds_equal_unpacked_jobs(tmp_path, method, scenario, size, iters, over):
    """Chunked and full hypernetworks, task-incremental and class-incremental, both
    regularizer terms, baselines."""
    seeds = [0, 1]
    cs = cfgs(method, seeds, scenario, size, **{"train.iters": iters, **over})
    run_packed(cs, [tmp_path / f"p{s}" for s in seeds], progress=False)
    for cfg, s in zip(cs, seeds, strict=True):
        run_job(cfg, tmp_path / f"u{s}", progress=False)
        assert_same_run(tmp_path / f"p{s}", tmp_path / f"u{s}", method)
    r0, r1 = (json.loads((tmp_path / f"p{s}/metrics.json").read_text()) for s in seeds)
    assert r0["acc_matrix"] != r1["acc_matrix"]  # the seeds really differ
