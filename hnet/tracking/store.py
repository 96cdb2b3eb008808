"""The tracking store: where MLflow runs go, how a run is identified, and the client.

Results files are the truth; MLflow mirrors them. This module is the one home of

* the tracking destination: :func:`resolve_uri` (explicit > ``$MLFLOW_TRACKING_URI`` > the
  embedded SQLite store of a results directory) and :func:`read_destination`, the file the study
  workflow's ``mlflow_init`` rule writes and every training job of the study reads;
* run identity: :func:`hnet.config.run_key` (the resolved config without machine-only keys,
  hashed) is stored as the tag ``hnet.run_key``; mirrors look the key up and re-attach instead
  of creating a second run, so resumes, reruns and syncs never duplicate runs;
* the client: only ``MlflowClient`` with explicit experiment and run ids is used, because the
  fluent API's global state (``mlflow.set_experiment``) races between parallel jobs.

``mlflow`` is imported inside functions only: importing it costs ~2 s.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hnet.errors import HnetError

KEY_TAG, STATE_TAG, PENDING = "hnet.run_key", "hnet.mirror", "mlflow_pending.json"
DEFAULT_EXPERIMENT = "hnet"
# MLflow's HTTP client retries an unreachable server for minutes (7 retries, 120 s timeout);
# the mirror has its own retries, so it caps these unless the user set them.
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def flatten(cfg: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"train": {"lr": 0.001}}`` → ``{"train.lr": "0.001"}`` (MLflow params are strings)."""
    out: dict[str, str] = {}
    for k, v in cfg.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = (v if isinstance(v, str) else json.dumps(v))[:6000]
    return out


def default_uri(results_dir: str | Path) -> str:
    """The embedded store under results/ (SQLite; MLflow 3 deprecates the file store)."""
    return f"sqlite:///{Path(results_dir).expanduser().resolve() / 'mlflow.db'}"


def resolve_uri(
    explicit: str | None = None,
    results_dir: str | Path | None = None,
    search_from: str | Path | None = None,
) -> str | None:
    """Where MLflow runs go: ``explicit`` > ``$MLFLOW_TRACKING_URI`` > the embedded store of
    ``results_dir`` > the nearest ``mlflow.db`` in a parent of ``search_from`` > None."""
    if explicit:
        return explicit
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if results_dir is not None:
        return default_uri(results_dir)
    if search_from is not None:
        for parent in Path(search_from).resolve().parents:
            if (parent / "mlflow.db").exists():
                return default_uri(parent)
    return None


def is_live(uri: str, live: bool | str = "auto") -> bool:
    """Do jobs log while they run? ``auto``: only to a server (http/https); a local store is
    mirrored after the jobs by one process instead (cheaper and free of SQLite lock contention)."""
    return uri.startswith(("http://", "https://")) if live == "auto" else bool(live)


@contextlib.contextmanager
def http_limits(uri: str) -> Iterator[None]:
    """Apply :data:`HTTP_LIMITS` for the duration of one call, leaving user-set values alone."""
    added = [k for k in HTTP_LIMITS if uri.startswith("http") and k not in os.environ]
    os.environ.update({k: HTTP_LIMITS[k] for k in added})
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def client(uri: str):
    """An ``MlflowClient``, after a quick connection test for database URIs: MLflow's own engine
    creation retries a failing database for ~100 s before giving up."""
    from mlflow.tracking import MlflowClient

    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if not uri.startswith(("http:", "https:", "file:", "databricks")) and "://" in uri:
        import sqlalchemy

        engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        finally:
            engine.dispose()
    return MlflowClient(uri)


def ensure_experiment(client: Any, uri: str, name: str) -> str:
    """Id of experiment ``name``, created if missing (a concurrent creator wins gracefully),
    marked as a model-training experiment (:mod:`hnet.tracking.provenance`)."""
    from mlflow.exceptions import MlflowException

    from hnet.tracking.provenance import (
        EXPERIMENT_KIND_TAG,
        TRAINING_KIND,
        mark_training_experiment,
    )

    exp = client.get_experiment_by_name(name)
    if exp is None:
        where = None  # SQLite: artifacts beside the db, not in ./mlruns of whatever cwd
        if uri.startswith("sqlite:///"):
            root = Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts"
            where = (root / "".join(c if c.isalnum() or c in "-_." else "_" for c in name)).as_uri()
        try:
            kind = {EXPERIMENT_KIND_TAG: TRAINING_KIND}
            return client.create_experiment(name, artifact_location=where, tags=kind)
        except MlflowException as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            exp = client.get_experiment_by_name(name)
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    mark_training_experiment(client, exp.experiment_id, exp.tags)
    return exp.experiment_id


def init_store(uri: str, experiment: str) -> str:
    """Create the tables and the experiment ONCE, before parallel jobs start (N processes that
    create a fresh store at once race in the schema migration); returns the experiment id."""
    with http_limits(uri):
        return ensure_experiment(client(uri), uri, experiment)


def read_destination(path: str | Path) -> dict[str, Any]:
    """The study's tracking destination file (``uri``, ``experiment``, ``live``), written by
    ``mlflow_init``; a study's jobs get it as ``hnet train --tracking-file``."""
    try:
        dest = json.loads(Path(path).read_text())
        live = dest.get("live", is_live(dest["uri"]))  # files of older studies lack "live"
        return {"uri": dest["uri"], "experiment": dest["experiment"], "live": bool(live)}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise HnetError(
            f"--tracking-file {path}: not a tracking destination file ({e}). It is written by "
            "the study's mlflow_init rule; rerun the study, or pass --tracking-uri instead."
        ) from None


class MirrorDown(HnetError):
    """The tracking store failed after all retries."""
