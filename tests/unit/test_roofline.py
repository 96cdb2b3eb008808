"""The roofline floor (hnet.job.roofline), the machine's limits (hnet.job.limits) and the
per-operation breakdown (hnet.job.breakdown): operation counts, FLOPs and bytes of known
operations, forward and backward; the floor's arithmetic; where profiled time is charged."""

from __future__ import annotations

import pytest
import torch
from steps import at_second_task
from torch.utils.flop_counter import FlopCounterMode

from hnet import config
from hnet.job.bench import run_bench
from hnet.job.breakdown import OUTSIDE, measure_ops
from hnet.job.limits import matmul_peak, memory_bandwidth
from hnet.job.roofline import Machine, OpCost, count_ops, roofline

F32 = 4
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"))]  # fmt: skip


def test_a_product_costs_its_flops_and_its_operands_and_result():
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    (op,) = count_ops(lambda: a @ b)
    assert (op.name, op.flops) == ("mm", 2 * 8 * 16 * 4)
    assert op.bytes == (8 * 16 + 16 * 4 + 8 * 4) * F32


def test_views_move_nothing_in_place_reads_and_writes_copies_only_write():
    x, y = torch.randn(100), torch.randn(100)
    by_name = {o.name: o for o in count_ops(lambda: (x.view(10, 10), x.add_(y), x.copy_(y)))}
    assert by_name["view"].bytes == 0
    assert by_name["add_"].bytes == 3 * 100 * F32  # reads x and y, writes x
    assert by_name["copy_"].bytes == 2 * 100 * F32  # reads y, writes x
    assert all(o.flops == 0 for o in by_name.values())


def test_the_backward_is_counted_and_flops_agree_with_torch_counter():
    """A real hnet training step (hypernetwork, target, regularizer, Adam): the same matmul
    FLOPs as torch's FlopCounterMode, and the backward's operations are there."""
    method, x, y = at_second_task("hnet", batch=16)
    step = lambda: method.train_step(1, x, y)  # noqa: E731
    ops = count_ops(step)
    with FlopCounterMode(display=False) as counter:
        step()
    assert sum(o.flops for o in ops) == counter.get_total_flops() > 0
    names = {o.name for o in ops}
    assert "mm" in names and ("addmm" in names or "bmm" in names)
    assert any("adam" in n for n in names)  # the optimizer step is part of a step's cost


def test_floor_charges_each_op_what_binds_it():
    machine = Machine(peak=1e9, sizes=[1_000, 1_000_000], bandwidth=[4e9, 1e9])
    ops = [OpCost("mm", 2_000_000, 1_000), OpCost("add", 0, 1_000), OpCost("big", 0, 500_000)]
    floor = roofline(ops, machine)
    assert floor.compute_seconds == pytest.approx(2e-3)  # 2 MFLOP at 1 GFLOP/s > 1 KB at 4 GB/s
    assert floor.memory_seconds == pytest.approx(1_000 / 4e9 + 500_000 / 1e9)
    assert (floor.ops, floor.flops, floor.bytes) == (3, 2_000_000, 502_000)


def test_bandwidth_is_the_envelope_of_larger_copies():
    """A small working set moves at least as fast as a larger one: a slow small copy (timed by
    its dispatch cost, or disturbed) does not set the floor."""
    machine = Machine(peak=1.0, sizes=[10, 100, 1000], bandwidth=[1.0, 5.0, 2.0])
    assert [machine.bandwidth_at(n) for n in (1, 10, 50, 100, 500, 10**6)] == [5, 5, 5, 5, 2, 2]


def test_measured_limits_are_positive_and_cover_the_sizes():
    cpu = torch.device("cpu")
    sizes, bandwidth = memory_bandwidth(cpu, sizes=(2**14, 2**20))
    assert sizes == [2**14, 2**20] and all(b > 1e8 for b in bandwidth)  # any CPU: 0.1 GB/s
    assert matmul_peak(cpu, seconds=0.05) > 1e8  # and 0.1 GFLOP/s


def test_profiled_time_is_charged_to_the_operations_the_roofline_counts():
    """``clone`` runs ``copy_`` inside: the breakdown charges it to ``clone`` (what the counter
    saw), and a composite above the kernels (``linear`` → ``addmm``) counts as outside."""
    x, w = torch.randn(256, 64), torch.randn(32, 64)
    step = lambda: (x.clone(), torch.nn.functional.linear(x, w))  # noqa: E731
    counted = {o.name for o in count_ops(step)}
    assert counted >= {"clone", "mm"} and "copy_" not in counted
    measured = measure_ops([step] * 3, counted, torch.device("cpu"))
    assert set(measured) <= counted | {OUTSIDE}
    assert measured["clone"] > 0 and measured["mm"] > 0
    assert "copy_" not in measured and "linear" not in measured


@pytest.mark.parametrize("device", DEVICES)
def test_bench_prints_the_costliest_operations_with_their_roofline(device):
    over = {"train.batch_size": 16}
    cfg = config.resolve("split_digits", "hnet", overrides=over, threads=1, device=device)
    lines: list[str] = []
    run_bench(cfg, prev_tasks=[1], steps=2, repeats=1, echo=lines.append, top_ops=4)
    start = next(i for i, line in enumerate(lines) if "costliest operations" in line)
    rows = lines[start + 2 : start + 6]
    assert len(rows) == 4 and lines[start + 6].startswith("(the others)")
    assert any(r.split()[0] in {"mm", "addmm"} for r in rows)
    assert all(float(r.split()[-4]) > 0 for r in rows)  # measured ms
