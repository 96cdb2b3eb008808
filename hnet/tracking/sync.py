"""``hnet sync``: upload finished run directories to MLflow after the fact, idempotently.

Used when the live mirror was down (``mlflow_pending.json``) and, for small local studies, to
mirror many runs from one process: MLflow's import and store connection (~2–3 s) are then paid
once per study instead of once per job.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hnet.config import run_key
from hnet.errors import HnetError
from hnet.rundir import find_metrics
from hnet.tracking.mirror import Mirror
from hnet.tracking.store import (
    DEFAULT_EXPERIMENT,
    KEY_TAG,
    PENDING,
    MirrorDown,
    client,
    resolve_uri,
)


def _experiment_of(uri: str, key: str) -> str | None:
    """Name of the experiment that already holds a run with this key, if any."""
    c = client(uri)
    ids = [e.experiment_id for e in c.search_experiments()]
    runs = c.search_runs(ids, f"tags.`{KEY_TAG}` = '{key}'", max_results=1) if ids else []
    return c.get_experiment(runs[0].info.experiment_id).name if runs else None


def run_dirs_under(path: str | Path) -> list[Path]:
    """``path`` itself if it is a run dir, else every finished run dir below it (sorted)."""
    p = Path(path)
    if (p / "metrics.json").exists() or not p.is_dir():
        return [p]
    found = [f.parent for f in find_metrics(p)]
    if not found:
        raise HnetError(f"hnet sync {p}: no finished run (metrics.json) in or below it.")
    return found


def sync(
    run_dir: str | Path, uri: str | None = None, experiment: str | None = None, force: bool = False
) -> str:
    """(Re-)upload a finished run dir from its files; returns the MLflow run id.

    Destination: the arguments, else what ``mlflow_pending.json`` recorded, else
    :func:`~hnet.tracking.store.resolve_uri` from the run dir; experiment: the arguments, the
    pending record, ``$MLFLOW_EXPERIMENT_NAME``, the experiment already holding the run's key,
    else ``hnet``. A run already tagged
    ``hnet.mirror=complete`` is left alone unless ``force``; re-logging writes identical rows.
    """
    d = Path(run_dir)
    if not (d / "metrics.json").exists():
        raise HnetError(f"{d} has no metrics.json: the job has not finished; resume it first.")
    res = json.loads((d / "metrics.json").read_text())
    cfg = json.loads((d / "config.json").read_text()) if (d / "config.json").exists() else None
    cfg = cfg or res["config"]
    pending = json.loads((d / PENDING).read_text()) if (d / PENDING).exists() else {}
    uri = resolve_uri(uri or pending.get("uri"), search_from=d)
    if not uri:
        raise HnetError(f"hnet sync {d}: no tracking store known; pass --tracking-uri URI.")
    experiment = experiment or pending.get("experiment")
    experiment = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if not experiment:  # mirrored live before? then the run's key knows its experiment
        try:
            experiment = _experiment_of(uri, run_key(cfg)) or DEFAULT_EXPERIMENT
        except Exception as e:
            raise MirrorDown(f"cannot search the MLflow store at {uri}: {e}") from e
    m = Mirror(uri, experiment, cfg, d, {"mlflow.source.git.commit": res.get("git_commit")},
               strict=True)  # fmt: skip
    m.start(status=None)
    if force or not m.complete:
        m.upload()
        m.finish()
    return m.run_id
