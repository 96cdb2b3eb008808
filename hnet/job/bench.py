"""``hnet bench``: where does a job spend its time and memory, and how far is it from the limit?

Measurements on the real benchmark data and the configured architecture, in one process:

1. per task index: the median time of one full training step (for hnet the regularizer grows
   with the number of previous tasks), the step's matmul/convolution FLOPs as a fraction of
   the matrix-multiply peak measured in the same run (:mod:`hnet.job.limits`), its roofline
   floor (every operation at that peak or at the memory bandwidth measured in the same run,
   whichever binds: :mod:`hnet.job.roofline`), and what the regularizer keeps per previous
   task (stored targets vs. online Θ*);
2. hnet: regularizer forward+backward vs. number of previous tasks: the batched
   implementations (``gram`` and ``direct``, one hypernetwork call each) against the per-task
   loop reference, interleaved so machine noise hits all alike;
3. peak memory (RSS; CUDA allocator peak on GPUs).

Weights are not trained to convergence: timings do not depend on the values.

``hnet bench --compare M1 M2 …`` instead times the full training step of several methods on the
same benchmark, scenario and batches, interleaved step by step so machine noise hits all alike,
at every task index (replay costs grow with the number of earlier tasks; the replay model of
HNET+R/TIR does not train on the last task): what a method costs relative to another.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from hnet import rng
from hnet.data import load_benchmark
from hnet.errors import ConfigError
from hnet.fast.cpu import tune_allocator
from hnet.job.breakdown import measure_ops, print_breakdown
from hnet.job.environment import apply_threads, peak_rss_mb, process_age, resolve_device
from hnet.job.limits import matmul_peak, memory_bandwidth, sync_device
from hnet.job.roofline import Machine, by_name, count_ops, roofline
from hnet.methods import METHODS
from hnet.methods.common.regularizer import OutputRegularizer


def _timed(fn, device: torch.device) -> float:
    sync_device(device)
    t0 = time.perf_counter()
    fn()
    sync_device(device)
    return time.perf_counter() - t0


def run_bench(
    cfg: dict[str, Any],
    prev_tasks: list[int] | None = None,
    steps: int = 20,
    repeats: int = 20,
    echo=print,
    top_ops: int = 0,
    ends: bool = False,
) -> dict[str, Any]:
    """Run the measurements, print tables, return the numbers (seconds, FLOP, MB).

    ``prev_tasks`` picks the task indices (= numbers of previous tasks) to time; default all.
    Any method's steps can be timed; the regularizer comparison applies to ``hnet``.
    ``top_ops`` > 0 also prints each task index's costliest operations
    (:mod:`hnet.job.breakdown`)."""
    apply_threads(cfg["threads"])
    tune_allocator()
    device = resolve_device(cfg["device"])
    rng.seed_globals(cfg["seed"])
    bench = load_benchmark(cfg["benchmark"], dict(cfg["data"]), cfg["seed"]).to(device)
    ks = sorted(set(prev_tasks)) if prev_tasks else list(range(bench.n_tasks))
    if ends:  # a whole job's estimate: the first and the last task (estimate_job)
        ks = sorted({0, bench.n_tasks - 1})
    for k in ks:
        if not 0 <= k < bench.n_tasks:
            raise ConfigError(
                f"--prev-tasks {k}: must be between 0 and {bench.n_tasks - 1} "
                f"({cfg['benchmark']} has {bench.n_tasks} tasks)."
            )
    method = METHODS.get(cfg["method"])(cfg, bench, device)
    startup = process_age()  # interpreter, imports, data and model: a job's fixed cost
    counts = method.param_counts()
    sizes = (
        f"hnet {counts['n_params_hnet']:,} params · target {counts['n_params_target']:,} weights"
        f" · ratio {counts['compression_ratio']:.3f}"
        if "n_params_hnet" in counts
        else f"method {cfg['method']}"
    )
    echo(
        f"{cfg['benchmark']} · {cfg['scenario']} · size {cfg['size']} · {bench.n_tasks} tasks · "
        f"device {device} · threads {torch.get_num_threads()} · {sizes}"
    )
    # an estimate's peak memory is the job's: the bandwidth test's large buffers (256 MB)
    # would raise this process's high-water mark, so it measures small working sets only
    small = {"sizes": (2**14, 2**20)} if ends else {}
    machine = Machine(matmul_peak(device), *memory_bandwidth(device, **small))
    rows = time_steps(method, bench, cfg, steps, device, ks, machine, top_ops, echo)
    print_steps(rows, steps, machine, echo)
    evals: dict[str, float] = {}
    if ends:  # a job scores every task before training and after each task (Job.evaluate_row)
        evals["eval_seconds"] = _timed(lambda: method.evaluate(0), device)
        if cfg["data"].get("val_fraction"):
            evals["val_eval_seconds"] = _timed(lambda: method.evaluate(0, split="val"), device)
    out: dict[str, Any] = {
        "step_seconds": {t: r["seconds"] for t, r in rows.items()},
        "step_flops": {t: r["flops"] for t, r in rows.items()},
        "step_bytes": {t: r["bytes"] for t, r in rows.items()},
        "step_ops": {t: r["ops"] for t, r in rows.items()},
        "roofline_seconds": {t: r["roofline"] for t, r in rows.items()},
        "reg_state_mb": {t: r["reg_mb"] for t, r in rows.items()},
        **evals,
        "n_tasks": bench.n_tasks,
        "startup_seconds": startup,
        "matmul_peak_flops": machine.peak,
        "memory_bandwidth": dict(zip(machine.sizes, machine.bandwidth, strict=True)),
    }
    if isinstance(getattr(method, "reg", None), OutputRegularizer) and not ends:
        reg_ks = [k for k in ks if k >= 1] if prev_tasks else list(range(1, bench.n_tasks))
        reg_times, impls = time_regularizer(method, bench.n_tasks, reg_ks, repeats, device)
        print_regularizer(method, bench.n_tasks, reg_times, impls, repeats, echo)
        out["reg_seconds"] = reg_times
    mem = {"peak_rss_mb": peak_rss_mb()}
    if device.type == "cuda":
        mem["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    echo("\npeak memory: " + ", ".join(f"{k} {v:.0f}" for k, v in mem.items()))
    return {**out, **mem}


def estimate_job(cfg: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
    """One whole job's time and memory from :func:`run_bench` with ``ends=True``: start-up, then
    every task's steps at a step time interpolated between the first and the last task (hnet's
    regularizer grows about linearly with the earlier tasks), then the evaluations: every task
    is scored before training and after each task, (n + 1) · n times one task's measured score
    (and as often its validation rows). Checkpoints and the log are not counted."""
    n = measured["n_tasks"]
    steps = cfg["train"].get("iters_per_task") or [cfg["train"]["iters"]] * n
    first, last = measured["step_seconds"][0], measured["step_seconds"][n - 1]
    per_task = [first + (last - first) * t / max(1, n - 1) for t in range(n)]
    train = sum(k * s for k, s in zip(steps, per_task, strict=True))
    one_eval = measured.get("eval_seconds", 0.0) + measured.get("val_eval_seconds", 0.0)
    evaluate = (n + 1) * n * one_eval
    out = {
        "seconds": (measured["startup_seconds"] or 0.0) + train + evaluate,
        "train_seconds": train,
        "eval_seconds": evaluate,
        "startup_seconds": measured["startup_seconds"],
        "step_seconds_first": first,
        "step_seconds_last": last,
        "steps": sum(steps),
        "n_tasks": n,
        "peak_rss_mb": measured["peak_rss_mb"],
    }
    if "peak_cuda_mb" in measured:
        out["peak_cuda_mb"] = measured["peak_cuda_mb"]
    return out


def reg_state_mb(method) -> float:
    """What the regularizer keeps for earlier tasks (stored targets, features or Θ*), in MB."""
    reg = getattr(method, "reg", None)
    if not isinstance(reg, OutputRegularizer):
        return 0.0
    return sum(t.numel() * t.element_size() for t in reg.state().values()) / 2**20


def time_steps(
    method,
    bench,
    cfg: dict[str, Any],
    steps: int,
    device,
    tasks: list[int],
    machine: Machine,
    top_ops: int = 0,
    echo=print,
) -> dict[int, dict[str, float]]:
    """At each task index in ``tasks`` (ascending; earlier tasks are begun, not trained): the
    median time of one full training step (after two warm-ups), its operations, FLOPs, bytes
    and roofline floor on ``machine`` (one more step), and the regularizer's state. With
    ``top_ops``, ``steps`` more steps are profiled and the costliest operations printed."""
    rows: dict[int, dict[str, float]] = {}
    gen = rng.generator(cfg["seed"], "bench-subsets")
    augment = rng.generator(cfg["seed"], "augment")  # crops and flips, as in training
    bs = cfg["train"]["batch_size"]
    for t in tasks:
        method.begin_task(t)
        task = bench.tasks[t]

        def batch_step(t=t, task=task):
            idx = torch.randint(task.n_train, (bs,), generator=gen).to(device)
            x, y = task.train_batch(idx, augment)
            method.see_rows(t, idx)
            return lambda: method.train_step(t, x, y)

        samples = []
        for i in range(steps + 2):  # two warm-up steps, then the timed ones
            dt = _timed(batch_step(), device)
            if i >= 2:
                samples.append(dt)
        ops = count_ops(batch_step())
        floor = roofline(ops, machine)
        if top_ops:
            groups = by_name(ops, machine)
            measured = measure_ops([batch_step() for _ in range(steps)], set(groups), device)
            print_breakdown(f"task {t + 1} ({t} previous)", measured, groups, top_ops, echo)
        method.end_task(t)
        rows[t] = {
            "seconds": statistics.median(samples),
            "flops": floor.flops,
            "bytes": floor.bytes,
            "ops": floor.ops,
            "roofline": floor.seconds,
            "roofline_memory": floor.memory_seconds,
            "reg_mb": reg_state_mb(method),
        }
    return rows


def print_steps(rows: dict[int, dict[str, float]], steps: int, machine: Machine, echo) -> None:
    bw = {s: machine.bandwidth_at(s) for s in (2**20, machine.sizes[-1])}
    echo(
        f"\ntraining step (median of {steps}); measured now: matmul peak "
        f"{machine.peak / 1e9:.0f} GFLOP/s, memory bandwidth {bw[2**20] / 1e9:.0f} GB/s at 1 MB, "
        f"{bw[machine.sizes[-1]] / 1e9:.0f} GB/s at {machine.sizes[-1] / 2**20:.0f} MB.\n"
        "flop floor = the step's matmul/conv FLOPs at that peak; roofline = every operation at "
        "that peak or at the memory bandwidth of its bytes, whichever binds (mem ms: the part "
        "bound by memory)"
    )
    echo(
        f"{'task':>6} {'prev':>5} {'step ms':>9} {'GFLOP':>7} {'flop ms':>8} {'of peak':>8} "
        f"{'ops':>6} {'MB moved':>9} {'roof ms':>8} {'mem ms':>7} {'of roof':>8} "
        f"{'reg MB':>8} {'MB/prev':>8}"
    )
    for t, r in rows.items():
        floor = r["flops"] / machine.peak
        per_prev = f"{r['reg_mb'] / t:>8.2f}" if t else f"{'':>8}"
        echo(
            f"{t + 1:>6} {t:>5} {r['seconds'] * 1e3:>9.2f} {r['flops'] / 1e9:>7.3f} "
            f"{floor * 1e3:>8.2f} {floor / r['seconds']:>8.1%} {r['ops']:>6} "
            f"{r['bytes'] / 2**20:>9.1f} {r['roofline'] * 1e3:>8.2f} "
            f"{r['roofline_memory'] * 1e3:>7.2f} {r['roofline'] / r['seconds']:>8.1%} "
            f"{r['reg_mb']:>8.1f}{per_prev}"
        )


def time_regularizer(
    method, n_tasks: int, ks: list[int], repeats: int, device
) -> tuple[dict[int, dict[str, float]], list[str]]:
    """Regularizer forward+backward per implementation and the per-task loop, interleaved, at
    each number of previous tasks in ``ks``."""
    hnet, hp = method.hnet, method.hp
    impls = ["direct"] if method.reg.head_mask is not None else ["gram", "direct"]
    regs = {i: OutputRegularizer(hp["targets"], 0, method.reg.head_mask, i) for i in impls}
    reg_times: dict[int, dict[str, float]] = {}
    for k in ks:
        for reg in regs.values():
            reg.begin_task(hnet, k)
        with torch.no_grad():  # move Θ away from Θ* so the loss and gradients are non-trivial
            for p in hnet.theta().values():
                p.add_(1e-3 * torch.randn_like(p))
        tasks = torch.arange(k)
        calls = {i: (lambda r=r, tasks=tasks: r.loss(hnet, tasks)) for i, r in regs.items()}
        calls["loop"] = lambda tasks=tasks: regs["direct"].loss_loop(hnet, tasks)
        reg_times[k] = interleaved_medians(calls, hnet, repeats, device)
    return reg_times, impls


def interleaved_medians(calls: dict, hnet, repeats: int, device) -> dict[str, float]:
    """Median forward+backward time of each call, rounds interleaved (the first is warm-up)."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for rep in range(repeats + 1):
        for name, fn in calls.items():

            def step(fn=fn):
                hnet.zero_grad(set_to_none=True)
                fn().backward()

            dt = _timed(step, device)
            if rep:
                samples[name].append(dt)
    return {name: statistics.median(v) for name, v in samples.items()}


def print_regularizer(method, n_tasks: int, reg_times, impls, repeats: int, echo) -> None:
    used = "gram" if method.reg.choose_gram(method.hnet, n_tasks - 1) else "direct"
    echo(
        f"\nregularizer forward+backward, ms (median of {repeats}, interleaved; "
        f"training uses {used})"
    )
    head = "".join(f"{i + ' ms':>11}" for i in [*impls, "loop"])
    ratios = "".join(f"{'loop/' + i:>13}" for i in impls)
    echo(f"{'prev tasks':>10}{head}{ratios}")
    for k, t in reg_times.items():
        cells = "".join(f"{t[i] * 1e3:>11.2f}" for i in [*impls, "loop"])
        echo(f"{k:>10}{cells}" + "".join(f"{t['loop'] / t[i]:>12.2f}x" for i in impls))


def compare_steps(
    cfgs: list[dict[str, Any]], steps: int = 20, echo=print
) -> dict[str, dict[int, float]]:
    """Median full training step (seconds) of each config's method at every task index, the
    methods interleaved step by step on identical batches (after two warm-up rounds).
    All configs must share benchmark, data, seed and device."""
    first = cfgs[0]
    for cfg in cfgs[1:]:
        for key in ("benchmark", "data", "seed", "device", "scenario"):
            if cfg[key] != first[key]:
                raise ConfigError(f"hnet bench --compare: every method needs the same {key}.")
    apply_threads(first["threads"])
    tune_allocator()
    device = resolve_device(first["device"])
    bench = load_benchmark(first["benchmark"], dict(first["data"]), first["seed"]).to(device)
    methods = {}
    for cfg in cfgs:
        rng.seed_globals(cfg["seed"])
        methods[cfg["method"]] = METHODS.get(cfg["method"])(cfg, bench, device)
    echo(
        f"{first['benchmark']} · {first['scenario']} · {bench.n_tasks} tasks · device {device} · "
        f"threads {torch.get_num_threads()} · batch {first['train']['batch_size']} · "
        f"methods {', '.join(methods)}"
    )
    gen = rng.generator(first["seed"], "bench-batches")
    bs = first["train"]["batch_size"]
    times: dict[str, dict[int, float]] = {name: {} for name in methods}
    for t in range(bench.n_tasks):
        task = bench.tasks[t]
        for m in methods.values():
            m.begin_task(t)
        samples: dict[str, list[float]] = {name: [] for name in methods}
        for i in range(steps + 2):  # two warm-up rounds
            idx = torch.randint(task.n_train, (bs,), generator=gen).to(device)
            x, y = task.train_batch(idx)
            for name, m in methods.items():
                m.see_rows(t, idx)
                dt = _timed(lambda m=m, t=t, x=x, y=y: m.train_step(t, x, y), device)
                if i >= 2:
                    samples[name].append(dt)
        for name, m in methods.items():
            m.end_task(t)
            times[name][t] = statistics.median(samples[name])
    print_comparison(times, steps, echo)
    return times


def print_comparison(times: dict[str, dict[int, float]], steps: int, echo) -> None:
    names = list(times)
    width = max(12, *(len(n) + 3 for n in names))
    echo(f"\ntraining step, ms (median of {steps} per task, methods interleaved)")
    echo(f"{'task':>6}" + "".join(f"{n:>{width}}" for n in names))
    for t in next(iter(times.values())):
        echo(f"{t + 1:>6}" + "".join(f"{times[n][t] * 1e3:>{width}.2f}" for n in names))
    mean = {n: statistics.fmean(times[n].values()) for n in names}
    echo(f"{'mean':>6}" + "".join(f"{mean[n] * 1e3:>{width}.2f}" for n in names))
    echo("\nmean step relative to (columns)")
    echo(f"{'':>14}" + "".join(f"{n:>{width}}" for n in names))
    for a in names:
        echo(f"{a:>14}" + "".join(f"{mean[a] / mean[b]:>{width - 1}.2f}x" for b in names))
