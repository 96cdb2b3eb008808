"""What makes a study's MLflow runs look like the training runs they are, in MLflow's own terms.

MLflow 3 sorts experiments by a tag: without ``mlflow.experimentKind`` its UI guesses, and an
experiment of runs without models or traces lands in the GenAI view. Its runs table shows each
run's duration (end − start time), its Source (``mlflow.source.*`` tags) and its Dataset (the
run's dataset inputs). A run mirrored from its files after the fact used to get the time of the
upload as start and end (durations of ~200 ms) and none of the rest. Here, from a run's files
(metrics.json; the live mirror of a job uses the same functions):

- :func:`mark_training_experiment`: the experiment kind ``custom_model_development`` (MLflow's
  "Machine learning" kind), set when the experiment is created or found without it;
- :func:`run_times`: the run's real start and end (``started_at``/``finished_at`` of
  metrics.json; results written before those keys: the file's time minus its wall time);
- :func:`source_tags`: the repository and git commit that trained the run;
- :func:`dataset_input`: the benchmark as an MLflow dataset: its name, the task split (the
  data config that defines the tasks), the digest of the data the job loaded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"  # the tag MLflow 3's UI reads
TRAINING_KIND = "custom_model_development"  # shown as "Machine learning"
# Kinds MLflow's UI stores after guessing; ours replaces them (a kind a user chose stays).
GUESSED_KINDS = {"genai_development_inferred", "custom_model_development_inferred"}
SOURCE_TYPE = "JOB"  # every run is one `hnet train` job
DATA_CONTEXT = "train"  # mlflow.data.context of the input: the data the run trained on
MACHINE_KEYS = ("dir", "download")  # data keys that say where, not what


def mark_training_experiment(client: Any, experiment_id: str, tags: dict[str, str]) -> None:
    """Tag the experiment as model training unless it already says so (or a user chose
    another kind); ``tags``: its current tags."""
    kind = tags.get(EXPERIMENT_KIND_TAG)
    if kind is None or kind in GUESSED_KINDS:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, TRAINING_KIND)


def run_times(run_dir: Path, res: dict[str, Any]) -> tuple[int, int]:
    """(start, end) of a finished run in epoch milliseconds, from its results."""
    end = res.get("finished_at")
    if not isinstance(end, (int, float)):
        end = (run_dir / "metrics.json").stat().st_mtime
    start = res.get("started_at")
    if not isinstance(start, (int, float)) or start > end:
        took = [res.get(k) for k in ("wall_seconds", "train_seconds")]
        start = end - max([t for t in took if isinstance(t, (int, float))] or [0.0])
    return int(start * 1000), int(end * 1000)


def source_tags(res: dict[str, Any] | None = None) -> dict[str, str]:
    """The ``mlflow.source.*`` tags of a run: from its results, or (``res`` None, a live run)
    from this checkout."""
    if res is None:
        from hnet.job.environment import git_commit, git_repository

        commit, repo = git_commit(), git_repository()
    else:
        commit, repo = res.get("git_commit"), res.get("git_repository")
    commit = commit or "unknown"
    tags = {
        "mlflow.source.type": SOURCE_TYPE,
        "mlflow.source.name": repo or "hnet",
        "mlflow.source.git.commit": commit.removesuffix("-dirty"),
    }
    if commit.endswith("-dirty"):
        tags["mlflow.source.git.dirty"] = "true"
    if repo and ("://" in repo or repo.startswith("git@")):
        tags["mlflow.source.git.repoURL"] = repo
    return tags


def task_split(cfg: dict[str, Any]) -> dict[str, Any]:
    """What defines a run's tasks: the benchmark and its data config without machine keys."""
    data = {k: v for k, v in sorted(cfg.get("data", {}).items()) if k not in MACHINE_KEYS}
    return {"benchmark": cfg["benchmark"], "split": data}


def dataset_input(res: dict[str, Any], cfg: dict[str, Any]) -> Any:
    """The run's data as an MLflow ``DatasetInput``: named by the benchmark, its source the task
    split, its digest the one the job computed from the loaded data (results written before
    ``data_digest`` existed: a digest of the task split)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    split = task_split(cfg)
    source = json.dumps(split, sort_keys=True)
    digest = res.get("data_digest") or hashlib.sha256(source.encode()).hexdigest()[:16]
    profile = {"tasks": len(res.get("acc_init") or []), "score": res.get("score")}
    dataset = Dataset(
        name=cfg["benchmark"],
        digest=str(digest),
        source_type="hnet",
        source=source,
        profile=json.dumps(profile),
    )
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", DATA_CONTEXT)])
