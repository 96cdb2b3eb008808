"""A method ready to take training steps on its second task of split_digits (the first trained
for one step, so regularizers, replay, lookahead and Adam's moments are all active): what
tests that inspect a single step's operations start from."""

from __future__ import annotations

import numpy as np
import torch

from hnet import config, rng
from hnet.data import load_benchmark
from hnet.job.sampler import Sampler
from hnet.methods import METHODS

_BENCHMARKS: dict = {}  # loaded once per (benchmark, seed, data settings) and test session


def build(
    name: str,
    scenario: str,
    benchmark: str = "split_digits",
    seed: int = 0,
    size: str | None = None,
    **overrides,
):
    """Method ``name`` built as its job would build it (globals seeded), on a benchmark loaded
    once per session; ``overrides`` are config keys."""
    cfg = config.resolve(
        benchmark, name, scenario=scenario, seed=seed, size=size, overrides=overrides
    )
    key = (benchmark, seed, str(sorted(cfg["data"].items())))
    if key not in _BENCHMARKS:
        _BENCHMARKS[key] = load_benchmark(benchmark, dict(cfg["data"]), seed)
    rng.seed_globals(seed)
    return METHODS.get(name)(cfg, _BENCHMARKS[key], torch.device("cpu"))


def at_second_task(name: str, seed: int = 0, batch: int = 8, **overrides):
    """``(method, x, y)``: ``name`` in its last supported scenario, begun on task 2, with a
    batch of task 2 to step on (two steps already taken on it); ``overrides`` are config keys
    (``**{"hnet.reg_impl": "gram"}``)."""
    scenario = METHODS.get(name).scenarios[-1]
    over = {"train.batch_size": batch, **overrides}
    cfg = config.resolve("split_digits", name, scenario=scenario, seed=seed, overrides=over)
    bench = load_benchmark("split_digits", dict(cfg["data"]), seed)
    method = METHODS.get(name)(cfg, bench, torch.device("cpu"))
    x, y = bench.tasks[0].train_batch(torch.arange(batch))
    method.begin_task(0)
    method.see_rows(0, torch.arange(batch))
    method.train_step(0, x, y)
    method.end_task(0)
    method.begin_task(1)
    x, y = bench.tasks[1].train_batch(torch.arange(batch))
    method.see_rows(1, torch.arange(batch))
    for _ in range(2):
        method.train_step(1, x, y)
    return method, x, y


def train(m, tasks=None, iters=None, after_task=None, evaluate=True):
    """The job loop without files: ``m`` trained on ``tasks`` (default all) for ``iters`` steps
    each (default ``train.iters``); ``after_task(m, t)`` after each task's end. Returns the
    rows of R for the trained tasks (``evaluate``), as an array."""
    iters = iters or m.cfg["train"]["iters"]
    sampler, rows = Sampler(m.cfg["seed"]), []
    for t in range(m.bench.n_tasks) if tasks is None else tasks:
        m.begin_task(t)
        data = m.bench.tasks[t]
        sampler.start_task(data.n_train)
        for _ in range(iters):
            idx = sampler.next(m.cfg["train"]["batch_size"])
            m.see_rows(t, idx)
            m.train_step(t, *data.train_batch(idx))
        m.end_task(t)
        if after_task is not None:
            after_task(m, t)
        if evaluate:
            rows.append([m.evaluate(j)[0] for j in range(m.bench.n_tasks)])
    return np.array(rows)
