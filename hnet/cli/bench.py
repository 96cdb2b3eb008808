"""``hnet bench``: time training steps and the regularizer of one job config (prints a table)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from hnet.cli.common import add_job_args, job_spec


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="time training steps (and the fraction of peak FLOP/s they reach) and the regularizer",
    )
    add_job_args(p, require_benchmark=False)  # not with --for-study
    p.add_argument(
        "--for-study",
        metavar="CONFIG",
        default=None,
        help="instead: estimate every benchmark × method × size of this study config (one "
        "process each) and write results/<study>/bench.json, which `resources: auto` reads",
    )
    p.add_argument(
        "--estimate",
        metavar="FILE",
        default=None,
        help="instead: time the first and last task's steps and write one whole job's estimated "
        "seconds and peak memory to FILE (JSON; what `--for-study` runs per benchmark × method)",
    )
    p.add_argument(
        "--prev-tasks",
        type=int,
        nargs="*",
        default=None,
        help="numbers of previous tasks (= task indices) to time steps and the regularizer at, "
        "e.g. 10 50 99 on permuted_mnist_100 (default: every task)",
    )
    p.add_argument("--steps", type=int, default=20, help="timed steps per task index")
    p.add_argument("--repeats", type=int, default=20, help="timed regularizer calls per point")
    p.add_argument(
        "--ops",
        type=int,
        default=0,
        metavar="N",
        help="also profile the steps and print the N costliest operations per task index, "
        "measured beside their roofline (where a step's time goes)",
    )
    p.add_argument(
        "--compare",
        nargs="+",
        metavar="METHOD",
        default=None,
        help="instead: time the training step of these methods side by side (interleaved), "
        "at every task index",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hnet.job.bench import compare_steps, estimate_job, run_bench

    if args.for_study:
        from hnet.study.measure import bench_study

        bench_study(args.for_study, steps=args.steps)
        return 0
    if not args.benchmark:
        from hnet.errors import ConfigError

        raise ConfigError("hnet bench: give --benchmark (or --for-study CONFIG).")
    spec = job_spec(args)
    if args.estimate:
        from pathlib import Path

        from hnet.files import write_json

        cfg, _ = spec.config(args.seed)
        measured = run_bench(cfg, steps=args.steps, ends=True)
        write_json(Path(args.estimate), {**estimate_job(cfg, measured), "config": cfg})
        return 0
    if args.compare:
        cfgs = [dataclasses.replace(spec, method=m).config(args.seed)[0] for m in args.compare]
        compare_steps(cfgs, steps=args.steps)
        return 0
    cfg, _ = spec.config(args.seed)
    run_bench(
        cfg, prev_tasks=args.prev_tasks, steps=args.steps, repeats=args.repeats, top_ops=args.ops
    )
    return 0
