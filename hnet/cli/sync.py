"""``hnet sync``: upload finished run directories to MLflow (idempotent)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("sync", help="upload finished run dirs to MLflow (idempotent)")
    p.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN_DIR",
        help="run directories, or directories searched for finished runs (e.g. a study's runs/)",
    )
    p.add_argument(
        "--tracking-uri", metavar="URI", help="default: mlflow_pending.json, $MLFLOW_TRACKING_URI"
    )
    p.add_argument(
        "--experiment", metavar="NAME", help="default: mlflow_pending.json, config, the run's key"
    )
    p.add_argument("--force", action="store_true", help="re-upload runs already complete")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hnet.tracking.sync import run_dirs_under, sync

    dirs = [d for arg in args.run_dirs for d in run_dirs_under(arg)]
    for run_dir in dirs:
        run_id = sync(run_dir, uri=args.tracking_uri, experiment=args.experiment, force=args.force)
        print(f"{run_dir}: mirrored as MLflow run {run_id}")
    return 0
