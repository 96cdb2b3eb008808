"""``hnet tracking-init``: create an MLflow store and experiment once, before parallel jobs."""

from __future__ import annotations

import argparse
from typing import Any

from hnet.errors import HnetError


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "tracking-init",
        help="create the MLflow store and experiment once, "
        "before parallel jobs (avoids the migration and experiment races)",
    )
    p.add_argument("--tracking-uri", metavar="URI", help="default: $MLFLOW_TRACKING_URI")
    p.add_argument("--experiment", default="hnet", help="experiment (study) name")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hnet.tracking.store import init_store, resolve_uri

    uri = resolve_uri(args.tracking_uri)
    if not uri:
        raise HnetError("hnet tracking-init needs --tracking-uri URI or $MLFLOW_TRACKING_URI.")
    exp_id = init_store(uri, args.experiment)
    print(f"MLflow store {uri}: experiment {args.experiment!r} (id {exp_id}) ready")
    return 0
