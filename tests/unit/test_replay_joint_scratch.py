"""Replay, joint and scratch baselines: the mechanism each one adds, its state, and full jobs."""

import io
import json
import re

import numpy as np
import pytest
import torch
from steps import build
from steps import train as run_tasks

import hnet.methods.joint
import hnet.methods.replay
import hnet.methods.scratch  # noqa: F401  (importing registers the methods)
from hnet import config
from hnet.errors import ConfigError
from hnet.job.run import run_job
from hnet.methods.replay import mixed_loss

SCENARIOS = ("cl1", "cl2", "cl3")


def make(method, scenario="cl1", benchmark="split_digits", seed=0, **over):
    return build(method, scenario, benchmark, seed, **over)


def train(m, tasks=None, iters=None):
    """The job loop without files: accuracy matrix rows for the trained tasks."""
    return run_tasks(m, tasks, iters)


# -- replay ----------------------------------------------------------------------------------
def test_replay_keeps_the_first_task_in_cl3():
    """Class-incrementally, finetuning forgets task 1 completely; replay must keep it."""
    without = train(make("replay", "cl3", **{"buffer.size": 0}), range(2), iters=100)
    with_ = train(make("replay", "cl3", **{"buffer.size": 200}), range(2), iters=100)
    assert without[1, 0] < 20.0
    assert with_[1, 0] > without[1, 0] + 50.0
    assert with_[1, 1] > 80.0  # and still learns the new task


@pytest.mark.parametrize("selection", ["reservoir", "class_balanced"])
def test_buffer_size_contents_and_seeding(selection):
    over = {"buffer.size": 5 * 51, "replay.selection": selection}  # 51 per task of 5
    a, b, c = make("replay", **over), make("replay", **over), make("replay", seed=1, **over)
    for m in (a, b, c):
        for t in range(3):
            m.end_task(t)
    assert torch.bincount(a.buf_t).tolist() == [51, 51, 51]
    assert a.buf_x.dtype == a.bench.tasks[0].x_train.dtype  # raw rows, not float inputs
    for t in range(3):  # every stored row is a training row of its task with its label
        rows, data = a.buf_x[a.buf_t == t], a.bench.tasks[t]
        match = (rows[:, None] == data.x_train[None]).all(-1)
        assert match.any(1).all()
        found = match.float().argmax(1)
        assert torch.equal(data.y_train[found], a.buf_y[a.buf_t == t])
        if selection == "class_balanced":
            assert sorted(torch.bincount(a.buf_y[a.buf_t == t]).tolist()) == [25, 26]
    assert torch.equal(a.buf_x, b.buf_x) and torch.equal(a.buf_y, b.buf_y)
    assert not torch.equal(a.buf_x, c.buf_x)


def test_the_budget_is_split_over_tasks_the_remainder_to_the_first():
    """buffer.size over 5 tasks: 1000 → 200 each (the old per-task default); 1003 → 201 for
    the first three, 200 for the others; the buffer holds exactly buffer.size rows."""
    for size, want in ((1000, [200] * 5), (1003, [201, 201, 201, 200, 200]), (3, [1, 1, 1, 0, 0])):
        m = make("replay", **{"buffer.size": size})
        for t in range(5):
            m.end_task(t)
        assert torch.bincount(m.buf_t, minlength=5).tolist() == want
        assert len(m.buf_t) == size


def test_a_buffer_no_task_can_fill_is_a_config_error():
    """More than the smallest task holds (known only from the loaded digits) or < 0: refused,
    naming buffer.size and the largest size that fits."""
    m = make("replay")
    n = [t.n_train for t in m.bench.tasks]
    fits = len(n) * min(n)
    with pytest.raises(ConfigError, match=r"buffer\.size=1000000 .*Use buffer\.size ≤ \d+"):
        make("replay", **{"buffer.size": 1_000_000})
    make("replay", **{"buffer.size": fits})  # the bound itself fits
    with pytest.raises(ConfigError, match=r"buffer\.size must be an integer ≥ 0"):
        config.resolve("split_digits", "replay", overrides={"buffer.size": -1})


def test_declared_task_sizes_refuse_a_buffer_before_any_data_is_read():
    with pytest.raises(ConfigError, match=r"task 1 a quota of 12001 .* only 12000"):
        config.resolve("split_fmnist", "replay", overrides={"buffer.size": 5 * 12001})


def test_replayed_inputs_use_their_own_tasks_permutation():
    m = make("replay", "cl2", "permuted_digits", **{"buffer.size": 150})  # 30 per task
    for t in range(3):
        m.end_task(t)
    x, y, tids = m.replay_batch()
    assert set(tids.tolist()) == {0, 1, 2}
    for t in range(3):
        data, sel = m.bench.tasks[t], m.select(t)
        want_x, want_y = data.train_batch(sel)
        got = x[tids == t]
        hits = (got[:, None] == want_x[None]).all(-1)  # each replayed input is a permuted row
        assert hits.any(1).all()
        assert torch.equal(want_y[hits.float().argmax(1)], y[tids == t])


@pytest.mark.parametrize("scenario", ["cl1", "cl2", "cl3"])
def test_mixed_loss_scores_each_sample_as_its_own_task(scenario):
    m = make("replay", scenario)
    m.seen = 3
    parts = [m.bench.tasks[t].train_batch(torch.arange(6 + t)) for t in range(3)]
    x = torch.cat([p[0] for p in parts])
    y = torch.cat([p[1] for p in parts])
    tids = torch.cat([torch.full((6 + t,), t) for t in range(3)])
    per_task = sum(m.loss_on(*parts[t], t) * len(parts[t][1]) for t in range(3)) / len(y)
    torch.testing.assert_close(mixed_loss(m, x, y, tids), per_task)


def test_replay_weighting_by_tasks_seen():
    m = make("replay")
    assert m.weights(0) == (1.0, 0.0) and m.weights(3) == (0.25, 0.75)
    assert make("replay", **{"replay.weighting": "equal"}).weights(3) == (1.0, 1.0)
    x, y = m.bench.tasks[1].train_batch(torch.arange(8))
    m.begin_task(1)
    plain = m.loss_on(x, y, 1)
    m.end_task(0)  # something to replay: the current batch now weighs 1/2
    torch.testing.assert_close(m.loss_on(x, y, 1), plain / 2)


# -- joint -------------------------------------------------------------------------------------
@pytest.mark.parametrize("sampling", ["uniform", "per_task"])
def test_joint_batches_cover_every_task_so_far(sampling):
    m = make("joint", **{"joint.sampling": sampling, "train.batch_size": 60})
    m.begin_task(2)
    _, y, tids = m.batch(2)
    assert len(y) == 60 and set(tids.tolist()) == {0, 1, 2}
    counts = torch.bincount(torch.cat([m.draw(2)[0] for _ in range(20)]), minlength=5)
    assert counts[3:].sum() == 0
    assert counts[:3].min() > 0.8 * counts[:3].max()  # tasks of similar size: similar shares
    if sampling == "uniform":  # one epoch over the union visits every sample exactly once
        m.begin_task(1)
        n = int(m.sizes[:2].sum())
        seen = [tuple(p) for _ in range(n // 60) for p in torch.stack(m.draw(1), 1).tolist()]
        assert len(set(seen)) == len(seen)


def test_joint_beats_finetune_class_incrementally():
    joint = train(make("joint", "cl3"), iters=60)
    fine = train(make("finetune", "cl3"), iters=60)
    assert joint[-1].mean() > fine[-1].mean() + 30.0


# -- scratch -----------------------------------------------------------------------------------
def weights(m):
    return torch.cat([p.detach().flatten() for p in m.net.parameters()])


def test_scratch_reinitialises_deterministically_each_task():
    a, b = make("scratch"), make("scratch", **{"train.lr": 3e-3})
    train(a, range(2), iters=20)
    train(b, range(2), iters=20)  # different training, same seed
    end_a = weights(a)
    a.begin_task(2)
    b.begin_task(2)
    assert not torch.equal(weights(a), end_a)
    assert torch.equal(weights(a), weights(b))  # depends on (seed, task) only
    assert a.opt is not b.opt and not a.opt.state  # fresh Adam moments
    c = make("scratch", seed=1)
    c.begin_task(2)
    assert not torch.equal(weights(c), weights(a))
    a.begin_task(3)
    assert not torch.equal(weights(a), weights(b))


def test_scratch_learns_every_task_and_forgets_the_rest():
    R = train(make("scratch"), iters=60)
    assert np.diag(R).min() > 90.0
    assert R[-1, :-1].mean() < 80.0


# -- state round trip ----------------------------------------------------------------------------
def roundtrip(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("mid_task", [False, True])
@pytest.mark.parametrize("method", ["replay", "joint", "scratch"])
def test_state_round_trip_continues_identically(method, mid_task):
    """torch.save → torch.load(weights_only=True) → a new instance continues bit-identically,
    from a task boundary (begin_task follows) or mid-task (the job resumes without it)."""
    over = {"buffer.size": 100} if method == "replay" else {}
    a = make(method, "cl3", **over)
    train(a, range(2), iters=10)
    x, y = a.bench.tasks[2].train_batch(torch.arange(16))
    if mid_task:
        a.begin_task(2)
        for _ in range(3):
            a.train_step(2, x, y)
    b = make(method, "cl3", **over)
    b.load_state_dict(roundtrip(a.state_dict()))
    if method == "replay":
        for k in ("buf_x", "buf_y", "buf_t"):
            assert torch.equal(getattr(a, k), getattr(b, k))
        ra, rb = a.replay_batch(), b.replay_batch()
        assert all(torch.equal(u, v) for u, v in zip(ra, rb, strict=True))
    if not mid_task:
        a.begin_task(2)
        b.begin_task(2)
    for _ in range(3):
        assert torch.equal(a.train_step(2, x, y), b.train_step(2, x, y))
    assert torch.equal(weights(a), weights(b))


# -- config and full jobs ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "method,key,value,needle",
    [
        ("replay", "buffer.size", -1, "buffer.size"),
        ("replay", "replay.selection", "herding", "replay.selection"),
        ("replay", "replay.replay_batch_size", 0, "replay.replay_batch_size"),
        ("replay", "replay.weighting", "loss", "replay.weighting"),
        ("joint", "joint.sampling", "balanced", "joint.sampling"),
    ],
)
def test_bad_hyperparameters_name_the_key(method, key, value, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        config.resolve("split_digits", method, overrides={key: value})


def test_class_balanced_needs_classes():
    with pytest.raises(ConfigError, match=re.escape("replay.selection")):
        config.resolve("toy_regression", "replay", overrides={"replay.selection": "class_balanced"})


@pytest.mark.parametrize(
    "benchmark,per_task",
    [("split_fmnist", 200), ("split_mnist", 200), ("permuted_fmnist", 100), ("permuted_mnist", 100),
     ("permuted_mnist_100", 100), ("permuted_digits", 100), ("split_digits", 200),
     ("split_cifar10", 200), ("split_cifar100", 200), ("split_cifar10_100", 200),
     ("toy_regression", 20)],
)  # fmt: skip
def test_the_shared_budget_keeps_the_old_per_task_buffers(benchmark, per_task):
    """buffer.size (default or tuned/buffer.yaml) gives every task the samples replay stored
    per task before the shared key existed, so earlier results stay exactly as they were."""
    from hnet.data import BENCHMARKS
    from hnet.methods.common.budget import quotas

    cfg = config.resolve(benchmark, "replay")
    spec = BENCHMARKS.get(benchmark)
    if spec.task_sizes is not None:
        n = len(spec.task_sizes(cfg["data"]))
    else:  # the digits: 10 classes in pairs, or data.n_tasks permutations
        n = cfg["data"].get("n_tasks") or 10 // cfg["data"]["classes_per_task"]
    assert quotas(cfg["buffer"]["size"], n) == [per_task] * n


def test_print_config_names_the_source_of_the_buffer_size():
    _, tuned_src = config.resolve_with_sources("permuted_mnist_100", "replay")
    _, default_src = config.resolve_with_sources("split_fmnist", "replay")
    _, set_src = config.resolve_with_sources(
        "split_fmnist", "replay", overrides={"buffer.size": 500}
    )
    assert "van de Ven" in tuned_src["buffer.size"] and tuned_src["buffer.size"].startswith("tuned")
    assert default_src["buffer.size"] == "default" and set_src["buffer.size"] == "--set"


def test_methods_without_rehearsal_have_no_buffer():
    assert "buffer" not in config.resolve("split_digits", "ewc")
    with pytest.raises(ConfigError, match=r"buffer\.size: method .ewc. stores no .*replay"):
        config.resolve("split_digits", "ewc", overrides={"buffer.size": 10})


@pytest.mark.parametrize(
    "method,scenario,benchmark",
    [
        *[(m, s, "split_digits") for m in ("replay", "joint", "scratch") for s in SCENARIOS],
        *[(m, "cl1", "toy_regression") for m in ("replay", "joint", "scratch")],
    ],
)
def test_run_job_writes_metrics(tmp_path, method, scenario, benchmark):
    cfg = config.resolve(benchmark, method, scenario=scenario, overrides={"train.iters": 20})
    run_job(cfg, tmp_path / "run", progress=False)
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["method"] == method and on_disk["scenario"] == scenario
    R = np.array(on_disk["acc_matrix"], dtype=float)
    n = 5 if benchmark == "split_digits" else 3
    assert R.shape == (n, n) and np.isfinite(R).all() and np.isfinite(on_disk["bwt"])
