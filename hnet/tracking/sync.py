"""``hnet sync``: upload finished run directories to MLflow after the fact, idempotently.

Used when the live mirror was down (``mlflow_pending.json``) and, for small local studies, to
mirror many runs from one process: MLflow's import and store connection (~2–3 s) are then paid
once per study instead of once per job.

Two kinds of failure are kept apart (:func:`sync_many`): a run whose own files are unreadable
(:class:`BadRunFiles`, e.g. a corrupt ``metrics.json``) is skipped and named, the others go on;
a store that fails (:class:`~hnet.tracking.store.MirrorDown`: damaged, read-only, unreachable)
stops the sync, and every run not uploaded gets ``mlflow_pending.json`` so that a later
``hnet sync`` completes the mirror.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hnet.config import run_key
from hnet.errors import HnetError
from hnet.files import write_json
from hnet.rundir import find_metrics
from hnet.tracking.mirror import Mirror
from hnet.tracking.provenance import run_times, source_tags
from hnet.tracking.store import (
    DEFAULT_EXPERIMENT,
    KEY_TAG,
    PENDING,
    MirrorDown,
    client,
    read_destination,
    resolve_uri,
)

STUDY_DESTINATION = "mlflow.json"  # results/<study>/mlflow.json, written by mlflow_init
# MLflow's artifact copies of uploaded runs (a study's local store keeps them beside the db):
# they hold a metrics.json but are not run directories
ARTIFACT_DIRS = {"mlartifacts", "mlruns", "mlflow-artifacts"}


class BadRunFiles(HnetError):
    """A finished run directory whose own files cannot be read (the store is not to blame)."""


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
    found = [f.parent for f in find_metrics(p) if not ARTIFACT_DIRS & set(f.relative_to(p).parts)]
    if not found:
        raise HnetError(f"hnet sync {p}: no finished run (metrics.json) in or below it.")
    return found


def _json_file(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BadRunFiles(f"{path}: cannot read the run's {what} ({type(e).__name__}: {e})") from e
    if not isinstance(data, dict):
        raise BadRunFiles(f"{path}: the run's {what} is not a JSON object")
    return data


def read_run(d: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics, config) of a finished run dir; :class:`BadRunFiles` names an unreadable file."""
    res = _json_file(d / "metrics.json", "results")
    cfg = _json_file(d / "config.json", "config") if (d / "config.json").exists() else None
    cfg = cfg or res.get("config")
    if not isinstance(cfg, dict) or not isinstance(res.get("acc_matrix"), list):
        raise BadRunFiles(f"{d / 'metrics.json'}: no config or acc_matrix in the run's results")
    return res, cfg


def study_destination(d: Path) -> dict[str, Any]:
    """The destination file of the study a run dir belongs to (nearest parent), or {}."""
    for parent in d.resolve().parents:
        f = parent / STUDY_DESTINATION
        if f.is_file():
            with contextlib.suppress(HnetError):
                return read_destination(f)
            return {}
    return {}


def destination(d: Path, uri: str | None, experiment: str | None) -> tuple[str | None, str | None]:
    """(uri, experiment) for a run dir: the arguments, else its ``mlflow_pending.json``, else
    its study's ``mlflow.json``, else ``$MLFLOW_TRACKING_URI`` / ``$MLFLOW_EXPERIMENT_NAME``,
    else the nearest ``mlflow.db`` in a parent (experiment: None = look the run's key up)."""
    pending: dict[str, Any] = {}
    if (d / PENDING).exists():
        with contextlib.suppress(OSError, ValueError):
            pending = json.loads((d / PENDING).read_text())
        pending = pending if isinstance(pending, dict) else {}
    study = study_destination(d) if not (uri or pending.get("uri")) or not experiment else {}
    uri = resolve_uri(uri or pending.get("uri") or study.get("uri"), search_from=d)
    experiment = experiment or pending.get("experiment") or study.get("experiment")
    return uri, experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME")


def sync(
    run_dir: str | Path, uri: str | None = None, experiment: str | None = None, force: bool = False
) -> str:
    """(Re-)upload a finished run dir from its files; returns the MLflow run id.

    Destination: :func:`destination`; without an experiment, the one already holding the run's
    key, else ``hnet``. A run already tagged ``hnet.mirror=complete`` is left alone unless
    ``force``; re-logging writes identical rows. Raises :class:`BadRunFiles` for unreadable run
    files and :class:`~hnet.tracking.store.MirrorDown` when the store fails.
    """
    d = Path(run_dir)
    if not (d / "metrics.json").exists():
        raise HnetError(f"{d} has no metrics.json: the job has not finished; resume it first.")
    res, cfg = read_run(d)
    uri, experiment = destination(d, uri, experiment)
    if not uri:
        raise HnetError(f"hnet sync {d}: no tracking store known; pass --tracking-uri URI.")
    if not experiment:  # mirrored live before? then the run's key knows its experiment
        try:
            experiment = _experiment_of(uri, run_key(cfg)) or DEFAULT_EXPERIMENT
        except Exception as e:
            raise MirrorDown(f"cannot search the MLflow store at {uri}: {e}") from e
    start, _ = run_times(d, res)  # a run created now starts when the job did
    m = Mirror(uri, experiment, cfg, d, source_tags(res), strict=True, start_time=start)
    m.start(status=None)
    if force or not m.complete:
        m.upload()
        m.finish()
    return m.run_id


@dataclass
class Outcome:
    """What :func:`sync_many` did: run dir → run id, → why skipped, → why still pending."""

    synced: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    store: str | None = None  # the store that failed

    def record(self, uri: str | None, experiment: str | None) -> dict[str, Any]:
        return {
            "uri": uri,
            "experiment": experiment,
            "runs": self.synced,
            "skipped": self.skipped,
            "pending": self.pending,
        }


def mark_pending(d: Path, uri: str | None, experiment: str | None, reason: str) -> None:
    """Leave ``mlflow_pending.json`` in a run dir the store did not take (as the live mirror
    does), so that ``hnet sync`` finds it and the study's end message counts it."""
    import time

    uri, experiment = destination(d, uri, experiment)
    rec = {"uri": uri, "experiment": experiment, "reason": reason[:2000]}
    rec["time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with contextlib.suppress(OSError):
        write_json(d / PENDING, rec)


def sync_many(
    run_dirs: Iterable[str | Path],
    uri: str | None = None,
    experiment: str | None = None,
    force: bool = False,
    on_run: Callable[[Path, str], None] | None = None,
) -> Outcome:
    """:func:`sync` every run dir: unreadable runs are skipped and named; the first store
    failure stops the upload and marks every run not uploaded as pending. Never raises for
    either; ``on_run(run_dir, run_id)`` is called after each upload."""
    out = Outcome()
    dirs = [Path(d) for d in run_dirs]
    for i, d in enumerate(dirs):
        try:
            run_id = sync(d, uri=uri, experiment=experiment, force=force)
        except BadRunFiles as e:
            out.skipped[str(d)] = str(e).removeprefix(f"{d / 'metrics.json'}: ")
            continue
        except MirrorDown as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            out.store = destination(d, uri, experiment)[0]
            for rest in dirs[i:]:
                if (rest / "metrics.json").exists():
                    mark_pending(rest, uri, experiment, reason)
                    out.pending[str(rest)] = reason
            break
        out.synced[str(d)] = run_id
        if on_run:
            on_run(d, run_id)
    return out
