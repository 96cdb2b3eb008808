"""MLflow runs that look like the training runs they are, with a real SQLite store: the
experiment is marked as model training, and every run, logged live by its job or synced after
the fact from its files, has its real start and end time (its duration covers the recorded
training time, not the ~200 ms of an upload), its source (repository and commit) and its data
set as a dataset input (name, task split, the digest of the data the job loaded)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from cli import env, train_argv

from hnet.tracking.provenance import EXPERIMENT_KIND_TAG, TRAINING_KIND
from hnet.tracking.store import default_uri
from hnet.tracking.sync import sync

ENV = env(MLFLOW_TRACKING_URI=None, MLFLOW_EXPERIMENT_NAME=None)
# long enough that a run's duration is clearly its training, not its upload
STEPS = {"train.iters": 100, "train.log_every": 50}


def train(out: Path, *extra: str, benchmark: str = "split_digits") -> dict:
    res = subprocess.run(
        train_argv(out, "-m", "finetune", "--quiet", *extra, benchmark=benchmark, sets=STEPS),
        capture_output=True,
        text=True,
        timeout=600,
        env=ENV,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())


def only_run(uri: str, experiment: str):
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    [run] = client.search_runs([exp.experiment_id])
    return exp, run


def check_training_run(run, res: dict, out: Path) -> None:
    """What every run must show: times, source, dataset."""
    info, tags = run.info, run.data.tags
    assert info.status == "FINISHED"
    assert info.end_time == int(res["finished_at"] * 1000)  # when its training ended
    # the duration spans the job's training, not the upload (~200 ms)
    assert info.end_time - info.start_time >= res["train_seconds"] * 1000
    assert info.start_time <= int(res["started_at"] * 1000) + 1
    assert tags["mlflow.source.type"] == "JOB"
    assert tags["mlflow.source.name"] == res["git_repository"]
    assert res["git_commit"].startswith(tags["mlflow.source.git.commit"])
    [given] = run.inputs.dataset_inputs  # exactly one, also after re-uploads
    assert given.dataset.name == res["benchmark"]
    assert given.dataset.digest == res["data_digest"]
    split = json.loads(given.dataset.source)
    assert split["benchmark"] == res["benchmark"]
    assert split["split"]["classes_per_task"] == res["config"]["data"]["classes_per_task"]
    assert "dir" not in split["split"]  # where the data lies is not what it is
    assert {(t.key, t.value) for t in given.tags} == {("mlflow.data.context", "train")}
    assert tags["hnet.run_dir"] == str(out.resolve())


def test_live_run_has_real_times_source_and_dataset(tmp_path):
    uri = default_uri(tmp_path / "store")
    out = tmp_path / "run"
    before = time.time()
    res = train(out, "--tracking-uri", uri, "--experiment", "live")
    assert res["started_at"] >= before and res["finished_at"] >= res["started_at"]
    exp, run = only_run(uri, "live")
    assert exp.tags[EXPERIMENT_KIND_TAG] == TRAINING_KIND
    check_training_run(run, res, out)


def test_synced_run_gets_the_times_it_was_trained_at(tmp_path):
    out = tmp_path / "run"
    res = train(out, "--no-tracking")
    time.sleep(1.0)  # the upload happens clearly after the training ended
    uri = default_uri(tmp_path / "store")
    run_id = sync(out, uri=uri, experiment="synced")
    assert sync(out, uri=uri, experiment="synced", force=True) == run_id  # idempotent
    exp, run = only_run(uri, "synced")
    assert exp.tags[EXPERIMENT_KIND_TAG] == TRAINING_KIND
    assert run.info.start_time == int(res["started_at"] * 1000)
    check_training_run(run, res, out)


def test_an_experiment_mlflow_guessed_wrong_is_marked_as_training(tmp_path):
    """MLflow's UI stores its guess; the mirror replaces a guess, not a kind a user chose."""
    from mlflow import MlflowClient

    from hnet.tracking.store import init_store

    uri = default_uri(tmp_path)
    client = MlflowClient(uri)
    guessed = client.create_experiment("guessed")
    client.set_experiment_tag(guessed, EXPERIMENT_KIND_TAG, "genai_development_inferred")
    chosen = client.create_experiment("chosen")
    client.set_experiment_tag(chosen, EXPERIMENT_KIND_TAG, "genai_development")
    for name in ("guessed", "chosen"):
        init_store(uri, name)
    assert client.get_experiment(guessed).tags[EXPERIMENT_KIND_TAG] == TRAINING_KIND
    assert client.get_experiment(chosen).tags[EXPERIMENT_KIND_TAG] == "genai_development"


@pytest.mark.parametrize("benchmark", ["permuted_digits"])
def test_dataset_digest_tells_the_data_apart(benchmark):
    """The digest follows the data the job loaded: the same data, the same digest; another
    permutation (another seed of a permuted benchmark), another digest."""
    from hnet.config import resolve
    from hnet.data import load_benchmark

    data = dict(resolve(benchmark, "finetune")["data"])
    a, b, c = (load_benchmark(benchmark, dict(data), seed) for seed in (0, 0, 1))
    assert a.digest() == b.digest() != c.digest()
