"""Arguments every job-shaped subcommand shares (``train``, ``bench``), and the job they name."""

from __future__ import annotations

import argparse

from hnet.job.request import JobSpec


def add_job_args(p: argparse.ArgumentParser, require_benchmark: bool = True) -> None:
    p.add_argument(
        "--benchmark", "-b", required=require_benchmark, help="benchmark name (see `hnet list`)"
    )
    p.add_argument("--scenario", default="cl1", help="cl1 | cl2 | cl3 (default: cl1)")
    p.add_argument("--method", "-m", default="hnet", help="method name (default: hnet)")
    p.add_argument("--seed", type=int, default=0, help="fixes init, permutations, data order")
    p.add_argument(
        "--size",
        default=None,
        help="hypernetwork size: official (default), a preset, or cr<ratio>",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train.iters=100 (repeatable)",
    )
    p.add_argument("--device", default=None, help="auto (default) | cpu | cuda[:N]")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default 0: the cores this process may use, shared with the "
        "other hnet jobs on them)",
    )
    p.add_argument(
        "--data-dir", default=None, help="dataset root (default: $HNET_DATA or ~/.cache/hnet/data)"
    )


def job_fields(args: argparse.Namespace) -> dict[str, object]:
    """The fields of :class:`hnet.job.request.JobSpec` from the arguments of
    :func:`add_job_args` (the seed aside: train may give several)."""
    return {
        "benchmark": args.benchmark,
        "method": args.method,
        "scenario": args.scenario,
        "size": args.size,
        "overrides": tuple(args.overrides),
        "device": args.device,
        "threads": args.threads,
        "data_dir": args.data_dir,
    }


def job_spec(args: argparse.Namespace) -> JobSpec:
    return JobSpec(**job_fields(args))  # type: ignore[arg-type]
