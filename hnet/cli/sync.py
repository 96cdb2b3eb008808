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
        help="run directories, or directories searched for finished runs (e.g. results/<study>)",
    )
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="default: mlflow_pending.json, the study's mlflow.json, $MLFLOW_TRACKING_URI",
    )
    p.add_argument(
        "--experiment",
        metavar="NAME",
        help="default: mlflow_pending.json, the study's mlflow.json, the run's key",
    )
    p.add_argument("--force", action="store_true", help="re-upload runs already complete")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Upload every run; a run with unreadable files is skipped and named, a failing store
    stops the upload (the rest stay pending). Either way: one paragraph and exit status 2."""
    import sys

    from hnet.tracking.status import short_reason, store_fix
    from hnet.tracking.sync import run_dirs_under, sync_many

    dirs = [d for arg in args.run_dirs for d in run_dirs_under(arg)]
    done = sync_many(
        dirs,
        uri=args.tracking_uri,
        experiment=args.experiment,
        force=args.force,
        on_run=lambda d, run_id: print(f"{d}: mirrored as MLflow run {run_id}", flush=True),
    )
    again = " ".join(args.run_dirs)
    problems = []
    if done.pending:
        store = done.store or "the tracking store"
        reason = short_reason(next(iter(done.pending.values())), store)
        problems.append(
            f"the tracking store {store} failed ({reason}); {len(done.pending)} of {len(dirs)} "
            f"runs are not uploaded (marked by mlflow_pending.json). Run `hnet sync {again}` "
            f"{store_fix(store, reason)}."
        )
    if done.skipped:
        names = "; ".join(f"{d}/metrics.json: {why}" for d, why in done.skipped.items())
        problems.append(
            f"skipped {len(done.skipped)} run(s) whose files are unreadable ({names}); the "
            "others were uploaded. Retrain such a cell (delete its run directory and rerun "
            "the study or the job), then sync it."
        )
    if problems:
        print(f"hnet sync: error: {' Also, '.join(problems)}", file=sys.stderr)
        return 2
    return 0
