"""A training step reads nothing back from the device: every ``.item()``, ``float(tensor)`` or
``int(tensor)`` is a ``_local_scalar_dense`` operation, which on a GPU waits for all queued
work. Counted with the roofline's operation counter on the CPU, so the property is checked
where the tests run; the job loops read losses only when a log line is due."""

from __future__ import annotations

import pytest
import torch
from steps import at_second_task

from hnet.job.roofline import count_ops
from hnet.methods import METHODS
from hnet.methods.common.packed import pack

READ_BACK = "_local_scalar_dense"


@pytest.mark.parametrize("name", METHODS.names())
def test_a_training_step_reads_no_scalar_back(name):
    method, x, y = at_second_task(name)
    ops = count_ops(lambda: method.train_step(1, x, y))
    assert len(ops) > 10  # the counter saw the step
    assert [o.name for o in ops if o.name == READ_BACK] == []


def test_a_packed_step_reads_no_scalar_back():
    methods, xs, ys = zip(*(at_second_task("hnet", seed) for seed in (0, 1)), strict=True)
    packed = pack(list(methods))
    x, y = torch.stack(xs), torch.stack(ys)
    packed.train_step(1, x, y)
    ops = count_ops(lambda: packed.train_step(1, x, y))
    assert [o.name for o in ops if o.name == READ_BACK] == []
