"""Arguments every job-shaped subcommand shares (``train``, ``bench``), their resolution, and
what ``train`` with one seed and with ``--seeds`` share (tracking destination, reuse checks)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_job_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--benchmark", "-b", required=True, help="benchmark name (see `hnet list`)")
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


def resolve_job(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    """The resolved job config of the parsed arguments, and where each value came from."""
    from hnet.config import parse_set, resolve_with_sources

    overrides = parse_set(args.overrides)
    if args.data_dir:
        overrides["data.dir"] = str(Path(args.data_dir).expanduser().resolve())
    return resolve_with_sources(
        args.benchmark,
        args.method,
        scenario=args.scenario,
        seed=args.seed,
        size=args.size,
        overrides=overrides,
        device=args.device,
        threads=args.threads,
    )


def printable(metric: Any, res: dict[str, Any]) -> bool:
    return metric.printed and res.get(metric.name) is not None


def tracking_destination(args: argparse.Namespace) -> tuple[str | None, str]:
    """(MLflow URI or None for no live mirror, experiment) from the arguments."""
    from hnet.tracking.store import read_destination, resolve_uri

    if args.no_tracking:
        return None, args.experiment
    if args.tracking_file:
        dest = read_destination(args.tracking_file)
        return (dest["uri"] if dest["live"] else None), dest["experiment"]
    return resolve_uri(args.tracking_uri), args.experiment


def config_changed(out: Path, cfg: dict) -> bool:
    """Does ``out`` hold a run of a different experiment (machine-only keys aside), according
    to its config.json, its metrics.json or its checkpoints?"""
    from hnet.job.integrity import inspect_run

    return bool(inspect_run(out, cfg).changed)
