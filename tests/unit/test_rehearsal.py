"""The rehearsal family: the shared reservoir buffer, and the mechanism of A-GEM, DER++, ER-ACE
and GDumb — each test fails when that mechanism is removed."""

from __future__ import annotations

import pytest
import torch
from steps import build
from steps import train as run_tasks

from hnet import config
from hnet.data.base import Benchmark, TaskData
from hnet.errors import ConfigError
from hnet.methods.agem import flatten, grads, project
from hnet.methods.common.buffer import ReservoirBuffer
from hnet.methods.er_ace import MASKED, asymmetric_logits
from hnet.methods.replay import mixed_loss


def tiny_bench(n: int = 64, perms: int = 2) -> Benchmark:
    """Tasks sharing one set of uint8 rows (``n`` × 6), each with its own input permutation."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 6), generator=g, dtype=torch.uint8)
    y = torch.arange(n) % 2
    tasks = [
        TaskData(
            x,
            y,
            x[:4],
            y[:4],
            classes=(2 * t, 2 * t + 1),
            scale=1 / 255,
            perm=torch.randperm(6, generator=g),
        )
        for t in range(perms)
    ]
    return Benchmark(name="tiny", tasks=tasks, in_dim=6, head_size=2, kind="classification")


def feed(buf: ReservoirBuffer, task: int, start: int, n: int, logits: bool = False) -> None:
    data = buf.bench.tasks[task]
    idx = torch.arange(start, start + n) % data.n_train
    z = torch.randn(n, 3) if logits else None
    buf.add(task, data.x_train[idx], data.y_train[idx], z)


def sequential_reservoir(size: int, n: int, u: torch.Tensor) -> list[int]:
    """Algorithm R one sample at a time with the draws ``u``: slot → stream position."""
    slots = [-1] * size
    for pos in range(n):
        j = pos if pos < size else min(int(u[pos] * (pos + 1)), pos)
        if j < size:
            slots[j] = pos
    return slots


# -- the buffer ---------------------------------------------------------------------------------
def test_batched_reservoir_equals_one_sample_at_a_time():
    """Same draws, same contents as the textbook loop, including two samples of one batch drawing
    the same slot (the later wins)."""
    bench = Benchmark(name="stream",
        tasks=[TaskData(torch.arange(400).unsqueeze(1), torch.zeros(400, dtype=torch.long),
                        torch.zeros(1, 1), torch.zeros(1, dtype=torch.long))],
        in_dim=1, head_size=1, kind="classification",
    )  # fmt: skip
    buf = ReservoirBuffer(10, bench, torch.Generator().manual_seed(5))
    draws = torch.Generator().manual_seed(5)
    u = torch.cat([torch.rand(25, generator=draws, dtype=torch.float64) for _ in range(16)])
    for b in range(16):
        feed(buf, 0, 25 * b, 25)
    assert buf.seen == 400 and len(buf) == 10
    assert buf.rows[:, 0].tolist() == sequential_reservoir(10, 400, u)


def test_reservoir_keeps_every_sample_of_the_stream_with_the_same_probability():
    """After a stream of 200 in batches of 16, each sample is kept with probability 20/200: early
    and late samples alike (a buffer that kept the first or the last ones would fail)."""
    bench = Benchmark(name="stream",
        tasks=[TaskData(torch.arange(200).unsqueeze(1), torch.zeros(200, dtype=torch.long),
                        torch.zeros(1, 1), torch.zeros(1, dtype=torch.long))],
        in_dim=1, head_size=1, kind="classification",
    )  # fmt: skip
    counts = torch.zeros(200)
    runs = 300
    for seed in range(runs):
        buf = ReservoirBuffer(20, bench, torch.Generator().manual_seed(seed))
        for start in range(0, 200, 16):
            feed(buf, 0, start, min(16, 200 - start))
        kept = buf.rows[:, 0]
        assert len(kept.unique()) == 20  # one stream pass: no duplicates
        counts[kept] += 1
    freq = counts / runs
    assert abs(freq.mean().item() - 0.1) < 1e-6
    for part in freq.view(4, 50):  # each quarter of the stream: 50 · 300 draws, sd ≈ 0.0024
        assert abs(part.mean().item() - 0.1) < 0.015


def test_buffer_stores_raw_rows_at_their_dtype_and_counts_its_bytes():
    bench = tiny_bench()
    buf = ReservoirBuffer(40, bench, torch.Generator().manual_seed(0))
    assert buf.memory_bytes() == {"samples": 0, "labels": 0, "task_ids": 0}
    feed(buf, 0, 0, 16, logits=True)
    assert buf.rows.dtype == torch.uint8
    assert torch.equal(buf.rows[:16], bench.tasks[0].x_train[:16])
    mem = buf.memory_bytes()
    assert mem == {"samples": 16 * 6, "labels": 16 * 8, "task_ids": 16 * 8, "logits": 16 * 3 * 4}
    feed(buf, 0, 16, 64, logits=True)  # full: the count stops at the size
    assert buf.memory_bytes()["samples"] == 40 * 6


def test_inputs_are_rebuilt_by_each_samples_own_task():
    """Permuted tasks share pixels: a stored sample replays through its own task's permutation."""
    bench = tiny_bench()
    buf = ReservoirBuffer(64, bench, torch.Generator().manual_seed(0))
    feed(buf, 0, 0, 20)
    feed(buf, 1, 20, 20)
    slots = torch.arange(40)
    x = buf.inputs(slots)
    for t, sl in ((0, slice(0, 20)), (1, slice(20, 40))):
        assert torch.equal(x[sl], bench.tasks[t].inputs(bench.tasks[t].x_train[slots[sl]]))
    assert not torch.equal(x[20:], bench.tasks[0].inputs(bench.tasks[0].x_train[20:40]))


def test_buffer_state_round_trip_continues_identically():
    bench = tiny_bench()
    a = ReservoirBuffer(30, bench, torch.Generator().manual_seed(1))
    for b in range(5):
        feed(a, b % 2, 16 * b, 16, logits=True)
    state = a.state_dict()
    b = ReservoirBuffer(30, bench, torch.Generator().manual_seed(99))
    b.load_state_dict(state)
    assert b.seen == a.seen == 80
    for buf in (a, b):
        feed(buf, 1, 7, 16, logits=False)  # logits=None: stored vectors are kept as they are
    sa, sb = a.sample(12, before_task=1), b.sample(12, before_task=1)
    for u, v in zip(sa, sb, strict=True):
        assert torch.equal(u, v)
    assert torch.equal(a.rows, b.rows) and torch.equal(a.tasks, b.tasks)
    assert torch.equal(a.logits, b.logits)


def test_choose_before_task_draws_only_earlier_tasks():
    buf = ReservoirBuffer(64, tiny_bench(), torch.Generator().manual_seed(0))
    feed(buf, 0, 0, 10)
    feed(buf, 1, 10, 30)
    slots = buf.choose(64, before_task=1)
    assert len(slots) == 10 and set(buf.tasks[slots].tolist()) == {0}
    assert len(buf.choose(64)) == 40


def test_buffer_size_must_be_a_positive_integer():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match=r"buffer\.size"):
            config.resolve("split_digits", "derpp", overrides={"buffer.size": bad})


# -- A-GEM --------------------------------------------------------------------------------------
def test_agem_projection_removes_the_conflicting_component_only():
    g_ref = torch.tensor([1.0, 0.0, 2.0])
    g = torch.tensor([-3.0, 1.0, 0.5])  # g·g_ref = -2 < 0: conflict
    p = project(g, g_ref, 0.0)
    assert torch.dot(p, g_ref).item() >= -1e-6
    assert abs(torch.dot(p, g_ref).item()) < 1e-6  # on the boundary of the constraint
    assert not torch.allclose(p, g)
    assert torch.allclose(p - g, (p - g).dot(g_ref) / g_ref.dot(g_ref) * g_ref)  # along g_ref
    agree = torch.tensor([1.0, 5.0, 1.0])
    assert torch.equal(project(agree, g_ref, 1e-7), agree)


def test_agem_without_projection_is_finetuning_and_with_it_training_differs():
    params = {}
    for name, extra in (("finetune", {}), ("agem", {"agem.project": False}), ("agem", {})):
        buffer = {"buffer.size": 50} if name == "agem" else {}
        m = build(name, "cl3", **{"train.iters": 10, "train.batch_size": 16, **buffer, **extra})
        run_tasks(m, range(2), evaluate=False)
        params[name, bool(extra)] = torch.cat([p.detach().flatten() for p in m.net.parameters()])
    assert torch.equal(params["finetune", False], params["agem", True])
    assert not torch.allclose(params["agem", False], params["agem", True])


def test_agem_step_keeps_the_loss_on_earlier_samples_from_rising_to_first_order():
    """The gradient A-GEM steps along has a non-negative dot product with the reference gradient
    of the very batch it drew (the constraint), where the raw gradient had a negative one."""
    # eps 0 (Mammoth's): van de Ven's 1e-7 softens the projection once g_ref is that small
    over = {"train.iters": 40, "buffer.size": 60, "train.lr": 0.01, "agem.eps": 0.0}
    m = build("agem", "cl3", **over)
    run_tasks(m, range(1), evaluate=False)
    m.begin_task(1)
    data = m.bench.tasks[1]
    checked = 0
    for i in range(20):
        idx = torch.arange(16 * i, 16 * i + 16) % data.n_train
        x, y = data.train_batch(idx)
        state = m.buffer.gen.get_state()
        ref = m.buffer.sample(m.replay_bs, before_task=1)
        m.buffer.gen.set_state(state)  # the step draws the same reference batch
        params = [p for p in m.net.parameters()]
        g = flatten(grads(m.loss_on(x, y, 1), params), params)
        g_ref = flatten(grads(mixed_loss(m, *ref[:3]), params), params)
        m.see_rows(1, idx)
        m.train_step(1, x, y)
        used = torch.cat([
            (torch.zeros_like(p) if p.grad is None else p.grad).flatten() for p in params
        ])  # fmt: skip
        assert torch.dot(used, g_ref).item() >= -1e-5 * g_ref.norm().item() * used.norm().item()
        if torch.dot(g, g_ref).item() < 0:
            checked += 1
            assert not torch.allclose(used, g)
        else:
            assert torch.allclose(used, g)
    assert checked > 0  # the test saw conflicting gradients


# -- DER++ --------------------------------------------------------------------------------------
def test_derpp_without_logit_replay_is_finetuning_and_forgets_more():
    over = {"train.iters": 100, "buffer.size": 100}
    zero = build("derpp", "cl3", **over, **{"derpp.alpha": 0.0, "derpp.beta": 0.0})
    ft = build("finetune", "cl3", **{"train.iters": 100})
    r_zero, r_ft = run_tasks(zero, range(2)), run_tasks(ft, range(2))
    assert (r_zero == r_ft).all()
    r_derpp = run_tasks(build("derpp", "cl3", **over), range(2))
    assert r_derpp[1, 0] > r_zero[1, 0] + 20.0  # remembers the first task
    logits_only = build("derpp", "cl3", **over, **{"derpp.beta": 0.0})  # the dark-knowledge term
    assert run_tasks(logits_only, range(2))[1, 0] > r_zero[1, 0] + 5.0


def test_derpp_stores_the_outputs_computed_before_the_step():
    m = build("derpp", "cl1", **{"buffer.size": 50})
    data = m.bench.tasks[0]
    m.begin_task(0)
    idx = torch.arange(8)
    x, y = data.train_batch(idx)
    with torch.no_grad():
        m.net.train()
        before = m.net(x)
    m.see_rows(0, idx)
    m.train_step(0, x, y)
    assert torch.allclose(m.buffer.logits[:8], before)
    assert torch.equal(m.buffer.rows[:8], data.x_train[:8])
    assert m.memory_bytes()["logits"] == 8 * before.shape[1] * 4


# -- ER-ACE -------------------------------------------------------------------------------------
def test_asymmetric_logits_mask_absent_seen_classes_only():
    logits = torch.zeros(3, 6)
    out = asymmetric_logits(logits, torch.tensor([2, 3, 3]), torch.tensor(3))
    assert (out[:, :2] == MASKED).all()  # earlier classes, absent from the batch
    assert (out[:, 2:] == 0).all()  # present ones, and those not seen yet (≥ the highest seen)


def test_er_ace_leaves_old_class_outputs_out_of_the_new_batch_loss_in_cl3():
    """With the mask, the current batch's loss has no gradient on the earlier classes' output
    units; plain ER's does (it pushes their logits down)."""
    grads = {}
    for asym in (True, False):
        m = build("er_ace", "cl3", **{"buffer.size": 40, "er_ace.asymmetric": asym})
        run_tasks(m, range(1), iters=5, evaluate=False)
        m.begin_task(1)
        data = m.bench.tasks[1]
        idx = torch.arange(16)
        x, y = data.train_batch(idx)
        logits = m.logits(x, 1, 2)
        labels = m.scenario_labels(y, 1)
        m.seen_max = torch.maximum(m.seen_max, labels.max())
        if asym:
            logits = asymmetric_logits(logits, labels, m.seen_max)
        (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(logits, labels), logits)
        grads[asym] = g[:, :2]
    assert (grads[True] == 0).all()
    assert (grads[False] != 0).any()


def test_er_ace_differs_from_er_in_cl3_and_not_in_cl1():
    """CL3: the mask changes training. CL1: the softmax of a task's own head never holds earlier
    classes and a batch of 32 holds both classes of a task, so ER-ACE is ER there."""
    for scenario, same in (("cl3", False), ("cl1", True)):
        params = []
        for asym in (True, False):
            over = {"buffer.size": 40, "er_ace.asymmetric": asym, "train.batch_size": 32}
            m = build("er_ace", scenario, **over)
            run_tasks(m, range(2), iters=20, evaluate=False)
            params.append(torch.cat([p.detach().flatten() for p in m.net.parameters()]))
        assert torch.equal(*params) == same


# -- GDumb --------------------------------------------------------------------------------------
def test_gdumb_learns_only_from_its_buffer():
    over = {"buffer.size": 60, "gdumb.fit_iters": 30}
    a = build("gdumb", "cl3", **over)
    start = [p.detach().clone() for p in a.net.parameters()]
    a.begin_task(0)
    data = a.bench.tasks[0]
    for i in range(10):  # the stream trains nothing
        idx = torch.arange(16 * i, 16 * i + 16) % data.n_train
        a.see_rows(0, idx)
        assert a.train_step(0, *data.train_batch(idx)).item() == 0.0
    assert all(torch.equal(p, q) for p, q in zip(a.net.parameters(), start, strict=True))
    assert len(a.buffer) == 60 and a.buffer.seen == 160
    # another GDumb that saw no stream at all, only the same buffer contents, ends the same
    b = build("gdumb", "cl3", **over)
    b.begin_task(0)
    b.buffer.load_state_dict(a.buffer.state_dict())
    a.end_task(0)
    b.end_task(0)
    assert all(
        torch.equal(p, q) for p, q in zip(a.net.parameters(), b.net.parameters(), strict=True)
    )
    assert a.evaluate(0)[0] > 80.0  # and the fit learned the task from 60 samples
    # other buffer contents, another network
    c = build("gdumb", "cl3", **over)
    c.begin_task(0)
    feed_state = a.buffer.state_dict()
    feed_state["labels"] = 1 - feed_state["labels"]
    c.buffer.load_state_dict(feed_state)
    c.end_task(0)
    assert c.evaluate(0)[0] < 20.0


def test_gdumb_refuses_per_task_batchnorm():
    with pytest.raises(ConfigError, match="bn_per_task"):
        config.resolve("split_digits", "gdumb", "cl1", overrides={"train.bn_per_task": True})
