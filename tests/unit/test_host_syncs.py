"""A training step reads nothing back from the device: every ``.item()``, ``float(tensor)`` or
``int(tensor)`` is a ``_local_scalar_dense`` operation, which on a GPU waits for all queued
work. Counted with the roofline's operation counter on the CPU, so the property is checked
where the tests run; the job loops read losses only when a log line is due."""

from __future__ import annotations

import pytest
import torch

from hnet import config
from hnet.data import load_benchmark
from hnet.job.roofline import count_ops
from hnet.methods import METHODS
from hnet.methods.packed import pack

READ_BACK = "_local_scalar_dense"


def trained_to_task_1(name: str, seed: int = 0):
    scenario = METHODS.get(name).scenarios[-1]
    over = {"train.batch_size": 8}
    cfg = config.resolve("split_digits", name, scenario=scenario, seed=seed, overrides=over)
    bench = load_benchmark("split_digits", dict(cfg["data"]), seed)
    method = METHODS.get(name)(cfg, bench, torch.device("cpu"))
    x, y = bench.tasks[0].train_batch(torch.arange(8))
    method.begin_task(0)
    method.train_step(0, x, y)
    method.end_task(0)
    method.begin_task(1)  # the second task: regularizers, replay and lookahead are active
    x, y = bench.tasks[1].train_batch(torch.arange(8))
    for _ in range(2):  # Adam's moments exist from here on
        method.train_step(1, x, y)
    return method, x, y


@pytest.mark.parametrize("name", METHODS.names())
def test_a_training_step_reads_no_scalar_back(name):
    method, x, y = trained_to_task_1(name)
    ops = count_ops(lambda: method.train_step(1, x, y))
    assert len(ops) > 10  # the counter saw the step
    assert [o.name for o in ops if o.name == READ_BACK] == []


def test_a_packed_step_reads_no_scalar_back():
    methods, xs, ys = zip(*(trained_to_task_1("hnet", seed) for seed in (0, 1)), strict=True)
    packed = pack(list(methods))
    x, y = torch.stack(xs), torch.stack(ys)
    packed.train_step(1, x, y)
    ops = count_ops(lambda: packed.train_step(1, x, y))
    assert [o.name for o in ops if o.name == READ_BACK] == []
