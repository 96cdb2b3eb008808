"""``hnet train``: run one job (one grid cell) into a run directory, or several seeds of it.

The arguments become one :class:`hnet.job.request.TrainRequest`; the launcher
(:func:`hnet.launch.launch`) decides reuse, packing and tracking and runs it; this module prints.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from hnet.cli.common import add_job_args, job_fields
from hnet.job.request import Tracking, TrainRequest, parse_seeds

if TYPE_CHECKING:
    from hnet.launch import SeedRun


def add_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="run one job (one grid cell) into a run directory")
    add_job_args(p)
    p.add_argument("--out", "-o", help="run directory (metrics.json, config.json, losses.jsonl)")
    p.add_argument(
        "--restart", action="store_true", help="move an existing run directory aside and start over"
    )
    p.add_argument(
        "--if-changed",
        choices=("refuse", "restart"),
        default="refuse",
        help="when --out holds a run of a different config: refuse (default) or move "
        "it aside and start over (what the study workflow uses)",
    )
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow store to mirror the run to (default: $MLFLOW_TRACKING_URI; none = no mirror)",
    )
    p.add_argument(
        "--experiment",
        default=os.environ.get("MLFLOW_EXPERIMENT_NAME", "hnet"),
        help="MLflow experiment, the study name (default: $MLFLOW_EXPERIMENT_NAME or hnet)",
    )
    p.add_argument(
        "--tracking-file",
        metavar="FILE",
        help="a study's tracking destination (written by its mlflow_init rule): mirror live "
        "to its store if it says so, else not at all",
    )
    p.add_argument("--no-tracking", action="store_true", help="no MLflow mirror")
    p.add_argument(
        "--scratch",
        metavar="RUN",
        help="matching from-scratch control run (dir or metrics.json): a scratch run adds "
        "transfer_vs_scratch, an hnet_scratch run of the same size transfer_vs_hnet_scratch",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config with the source of every value, and exit",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.add_argument(
        "--seeds",
        metavar="LIST",
        help="several seeds of this cell, e.g. 0,1,2 or 0-7 (instead of --seed); --out must "
        "then hold {seed}, e.g. 'runs/seed{seed}'. A packable method trains the seeds not yet "
        "finished in one process, parameters stacked over seeds; others run one process per seed",
    )
    p.add_argument(
        "--no-pack",
        action="store_true",
        help="with --seeds: one process per seed even for a packable method",
    )
    p.set_defaults(func=run)


def request_from_args(args: argparse.Namespace) -> TrainRequest:
    """The request of the parsed ``hnet train`` arguments (a bad --seeds list: ConfigError)."""
    seed_list = args.seeds is not None
    return TrainRequest(
        **job_fields(args),  # type: ignore[arg-type]
        seeds=parse_seeds(args.seeds) if seed_list else (args.seed,),
        seed_list=seed_list,
        out=args.out,
        scratch=args.scratch,
        restart=args.restart,
        if_changed=args.if_changed,
        tracking=Tracking(
            uri=args.tracking_uri,
            experiment=args.experiment,
            file=args.tracking_file,
            off=args.no_tracking,
        ),
        quiet=args.quiet,
        pack=not args.no_pack,
    )


def run(args: argparse.Namespace) -> int:
    from hnet.config import format_with_sources
    from hnet.launch import launch, plan

    request = request_from_args(args)
    if args.print_config:
        cfg, sources = request.config(request.seeds[0])
        print(format_with_sources(cfg, sources), end="")
        return 0
    p = plan(request)
    if p.why_not_packed is not None:
        print(
            f"hnet train: not packing seeds {args.seeds} ({p.why_not_packed}); "
            "one process per seed",
            file=sys.stderr,
        )
    return report(launch(p), per_seed=request.seed_list)


def report(runs: list[SeedRun], per_seed: bool) -> int:
    """Print each seed's metrics (those trained in this process) and return the exit status:
    the first failed seed process's, 0 if none failed."""
    from hnet.metrics import METRICS
    from hnet.rundir import METRICS as METRICS_JSON

    status = 0
    for r in runs:
        if r.result is None:
            if r.status != 0:
                print(
                    f"hnet train: seed {r.seed} failed with exit status {r.status}", file=sys.stderr
                )
                status = status or r.status
            continue
        na = r.result.get("not_applicable", {})
        line = " ".join(
            f"{m.name}={r.result[m.name]:.4g}" if m.name not in na else f"{m.name}=n/a"
            for m in METRICS
            if printable(m, r.result)
        )
        print(f"seed {r.seed}: {line}" if per_seed else line)
        print(f"wrote {r.out / METRICS_JSON}")
    return status


def printable(metric: Any, res: dict[str, Any]) -> bool:
    """Printed, and a number or not applicable (docs/metrics.md) in this run."""
    na = metric.name in res.get("not_applicable", {})
    return metric.printed and (res.get(metric.name) is not None or na)
