"""Packed seeds equal their unpacked jobs: the cases beyond the unit tier's (hnet CL1 and
finetune CL3 in tests/unit/test_packed.py) — the gram term on the stack, class-incremental
hnet, an unchunked hypernetwork and scratch's fresh network per task."""

from __future__ import annotations

import pytest
from packed_runs import check_packed_equals_unpacked


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
    check_packed_equals_unpacked(tmp_path, method, scenario, size, iters, over)
