"""Per-task BatchNorm statistics inside the methods (ResNet-32 on tiny Split CIFAR-10/100).

After task 2 has been trained, task 1 must be evaluated with the statistics that were estimated
while task 1 trained: HNET always (its row of ``stats``), baselines with ``train.bn_per_task``.
These tests fail if evaluation picks up the later task's set, or if training task 2 writes into
task 1's.
"""

from __future__ import annotations

import io

import pytest
import torch
from registry_cases import tiny_buffer

from hnet import config
from hnet.data import load_benchmark
from hnet.methods import METHODS
from hnet.methods import hnet as hnet_module
from hnet.models.batchnorm import get_stats, init_stats
from hnet.models.target import functional_forward


def setup(root, method: str, scenario: str = "cl1", **over):
    if scenario not in METHODS.get(method).scenarios:  # iCaRL: CL3 only
        scenario = METHODS.get(method).scenarios[0]
    overrides = tiny_buffer(method) | {
        "data.dir": str(root),
        "data.download": False,
        "data.check_counts": False,
        "data.n_tasks": 2,
        "train.epochs": 0,
        "train.batch_size": 8,
        **over,
    }
    cfg = config.resolve("split_cifar10_100", method, scenario, overrides=overrides, threads=1)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    bench = load_benchmark("split_cifar10_100", cfg["data"], 0)
    return METHODS.get(method)(cfg, bench, torch.device("cpu")), bench


def train(method, bench, task: int, steps: int = 3) -> None:
    gen = torch.Generator().manual_seed(task)
    method.begin_task(task)
    for _ in range(steps):
        idx = torch.randint(bench.tasks[task].n_train, (8,), generator=gen)
        method.see_rows(task, idx)
        method.train_step(task, *bench.tasks[task].train_batch(idx, gen))
    method.end_task(task)


@pytest.fixture
def spy(monkeypatch):
    """The ``stats`` argument of every target call HNET makes."""
    seen: list[torch.Tensor | None] = []
    real = hnet_module.functional_forward

    def record(net, flat, x, stats=None, train=False, **kw):
        seen.append(None if stats is None else stats.clone())
        return real(net, flat, x, stats, train, **kw)

    monkeypatch.setattr(hnet_module, "functional_forward", record)
    return seen


def test_hnet_tests_task_1_with_its_own_statistics_after_task_2(tiny_data_root, spy):
    m, bench = setup(tiny_data_root, "hnet")
    fresh = init_stats(m.target)
    train(m, bench, 0)
    after_task_1 = m.stats[0].clone()
    assert not torch.equal(after_task_1, fresh)  # task 1's training estimated its set
    assert torch.equal(m.stats[1], fresh)  # and left task 2's alone
    train(m, bench, 1)
    assert torch.equal(m.stats[0], after_task_1)  # training task 2 never touched task 1's set
    assert not torch.equal(m.stats[1], fresh)
    assert not torch.equal(m.stats[1], after_task_1)

    spy.clear()
    m.evaluate(0)
    assert spy and all(torch.equal(s, after_task_1) for s in spy)
    spy.clear()
    m.evaluate(1)
    assert spy and all(torch.equal(s, m.stats[1]) for s in spy)

    # ... and which set is used matters: task 2's statistics give task 1 other outputs
    x = bench.tasks[0].inputs(bench.tasks[0].x_test)
    with torch.no_grad():
        own = functional_forward(m.target, m.weights(0), x, after_task_1)
        other = functional_forward(m.target, m.weights(0), x, m.stats[1])
    assert not torch.allclose(own, other, atol=1e-4)


def test_hnet_task_inference_runs_every_embedding_with_its_own_statistics(tiny_data_root, spy):
    m, bench = setup(tiny_data_root, "hnet", "cl3")
    train(m, bench, 0)
    train(m, bench, 1)
    spy.clear()
    m.evaluate(0)
    assert spy and all(s.shape == m.stats.shape and torch.equal(s, m.stats) for s in spy)


def test_hnet_statistics_are_part_of_the_checkpoint(tiny_data_root):
    a, bench = setup(tiny_data_root, "hnet")
    train(a, bench, 0)
    a.begin_task(1)
    a.train_step(1, *bench.tasks[1].train_batch(torch.arange(8)))  # mid-task
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b, _ = setup(tiny_data_root, "hnet")
    b.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(a.stats, b.stats)
    x, y = bench.tasks[1].train_batch(torch.arange(8, 16))
    assert torch.equal(a.train_step(1, x, y), b.train_step(1, x, y))
    assert torch.equal(a.stats, b.stats)


def bn_stats_seen_in_evaluation(m, task: int) -> torch.Tensor:
    """The module's BatchNorm statistics while ``m.evaluate(task)`` runs its forward passes."""
    seen = []
    hook = m.net.head.register_forward_pre_hook(lambda mod, args: seen.append(get_stats(m.net)))
    try:
        m.evaluate(task)
    finally:
        hook.remove()
    assert seen and all(torch.equal(s, seen[0]) for s in seen)
    return seen[0]


def test_baseline_with_bn_per_task_tests_task_1_with_its_own_statistics(tiny_data_root):
    m, bench = setup(tiny_data_root, "finetune", **{"train.bn_per_task": True})
    train(m, bench, 0)
    after_task_1 = get_stats(m.net)
    train(m, bench, 1)
    after_task_2 = get_stats(m.net)
    assert not torch.equal(after_task_1, after_task_2)
    assert torch.equal(bn_stats_seen_in_evaluation(m, 0), after_task_1)
    assert torch.equal(bn_stats_seen_in_evaluation(m, 1), after_task_2)
    assert not m.net.training  # evaluation in eval mode
    # a checkpoint taken while task 1's set is loaded keeps both sets
    b, _ = setup(tiny_data_root, "finetune", **{"train.bn_per_task": True})
    b.load_state_dict(m.state_dict())
    assert torch.equal(bn_stats_seen_in_evaluation(b, 1), after_task_2)
    assert torch.equal(bn_stats_seen_in_evaluation(b, 0), after_task_1)


def test_baseline_default_shares_one_set_like_the_papers_fine_tuning(tiny_data_root):
    m, bench = setup(tiny_data_root, "finetune")
    assert m.bn is None
    train(m, bench, 0)
    train(m, bench, 1)
    assert torch.equal(bn_stats_seen_in_evaluation(m, 0), get_stats(m.net))


def test_baselines_estimate_the_fisher_in_eval_mode_without_augmentation(tiny_data_root):
    """Per-sample gradients through BatchNorm need its running statistics (a batch of one has
    none); the net must come back in the mode it was in."""
    m, bench = setup(tiny_data_root, "ewc", **{"ewc.fisher_samples": 3})
    train(m, bench, 0, steps=1)
    assert m.fisher is not None and torch.isfinite(m.fisher).all() and m.fisher.sum() > 0
    m.net.train()
    m.end_task(0)
    assert m.net.training


CIFAR_METHODS = [
    m for m, c in METHODS.items() if c.benchmarks is None or "split_cifar10_100" in c.benchmarks
]


@pytest.mark.parametrize(
    "method",
    # baselines own a net; GDumb's step only fills its buffer (the net trains at end_task)
    [m for m in CIFAR_METHODS if not METHODS.get(m).sized and m != "gdumb"],
)
def test_baselines_step_in_train_mode_and_evaluate_in_eval_mode(tiny_data_root, method):
    """BatchNorm batch statistics and dropout in every training step, even right after an
    evaluation (joint has a step of its own); running statistics in evaluation."""
    m, bench = setup(tiny_data_root, method)
    modes: list[bool] = []
    m.net.head.register_forward_pre_hook(lambda mod, args: modes.append(m.net.training))
    m.begin_task(0)
    m.evaluate(0)
    assert modes and not any(modes)
    modes.clear()
    m.see_rows(0, torch.arange(8))
    m.train_step(0, *bench.tasks[0].train_batch(torch.arange(8)))
    assert modes and all(modes)
