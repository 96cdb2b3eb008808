"""``hnet train``: run one job (one grid cell) into a run directory."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from hnet.cli.common import (
    add_job_args,
    config_changed,
    printable,
    resolve_job,
    tracking_destination,
)
from hnet.errors import HnetError
from hnet.metrics import METRICS
from hnet.rundir import move_aside


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
        help="matching scratch run (dir or metrics.json): adds transfer_vs_scratch",
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


def run(args: argparse.Namespace) -> int:
    from hnet.config import format_with_sources

    if args.seeds is not None and not args.print_config:
        from hnet.cli.seeds import run_seeds

        return run_seeds(args)
    cfg, sources = resolve_job(args)
    if args.print_config:
        print(format_with_sources(cfg, sources), end="")
        return 0
    if args.out is None:
        raise HnetError("hnet train needs --out DIR (the run directory to write).")
    out = Path(args.out)
    if out.exists() and (
        args.restart or (args.if_changed == "restart" and config_changed(out, cfg))
    ):
        move_aside(out)
    res = train_with_mirror(args, cfg, out)
    print(" ".join(f"{m.name}={res[m.name]:.4g}" for m in METRICS if printable(m, res)))
    print(f"wrote {out / 'metrics.json'}")
    return 0


def train_with_mirror(args: argparse.Namespace, cfg: dict, out: Path) -> dict[str, Any]:
    from hnet.job.run import run_job

    uri, experiment = tracking_destination(args)
    progress = False if args.quiet else None
    if uri is None:
        return run_job(cfg, out, progress=progress, scratch=args.scratch)
    from hnet.tracking.mirror import Mirror

    with Mirror(uri, experiment, cfg, out) as mirror:
        return run_job(cfg, out, progress=progress, scratch=args.scratch, on_event=mirror.on_event)
