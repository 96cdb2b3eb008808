"""The MLflow mirror against a real SQLite store: identity, re-attach, batching, concurrency,
a tracking store that is down, and idempotent sync.

Creating a fresh MLflow SQLite store runs ~7 s of schema migrations, so one initialised store is
built per session and copied into each test.
"""

import json
import math
import multiprocessing as mp
import os
import shutil
import sqlite3
import time

import pytest

from hnet.config import identity_config, run_key
from hnet.errors import HnetError
from hnet.tracking import plots
from hnet.tracking import store as trk
from hnet.tracking.mirror import Mirror
from hnet.tracking.sync import sync

CFG = {
    "benchmark": "split_digits",
    "scenario": "cl1",
    "method": "hnet",
    "size": "official",
    "seed": 0,
    "device": "auto",
    "threads": 0,
    "data": {"dir": None, "download": True},
    "train": {"iters": 100, "lr": 1e-3, "adam_betas": [0.9, 0.999], "log_every": 50},
    "hnet_arch": {},
}
R = [[90.0, 10.0, 11.0], [85.0, 92.5, 12.0], [80.0, 88.0, 95.1]]


def cfg_with(**top):
    return {**json.loads(json.dumps(CFG)), **top}


@pytest.fixture(scope="session")
def template_db(tmp_path_factory):
    d = tmp_path_factory.mktemp("template")
    trk.init_store(trk.default_uri(d), "template")
    return d / "mlflow.db"


@pytest.fixture
def store(tmp_path, template_db):
    """A fresh, initialised SQLite store (copied): (uri, path of the db file)."""
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(template_db, db)
    return trk.default_uri(db.parent), db


def rows(db, sql="select count(*) from metrics"):
    with sqlite3.connect(db) as con:
        return con.execute(sql).fetchall()


def counts(db):
    """Runs, metric rows and params in the whole store."""
    return {t: rows(db, f"select count(*) from {t}")[0][0] for t in ("runs", "metrics", "params")}


def finished_run_dir(path, cfg=CFG):
    """A run directory as run_job leaves it (config, losses, metrics), written by hand."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(cfg))
    losses = [
        {"task": t, "step": s, "loss": 1 / (1 + 10 * t + s)} for t in range(3) for s in (0, 50)
    ]
    (path / "losses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in losses))
    res = {
        **{k: cfg[k] for k in ("benchmark", "scenario", "method", "size", "seed")},
        "score": "accuracy_percent",
        "acc_matrix": R,
        "acc_init": [10.0, 9.0, math.nan],
        "acc_final": 87.7,
        "bwt": -5.0,
        "fwt": None,
        "task_inference_matrix": [[100.0, None, None], [99.0, 98.0, None], [97.0, 96.0, 95.0]],
        "resumed": False,
        "config": cfg,
        "git_commit": "0123abc",
    }
    (path / "metrics.json").write_text(json.dumps(res))
    return path


# -- identity -------------------------------------------------------------------------------
def test_run_key_ignores_the_environment_and_sees_the_experiment():
    key = run_key(CFG)
    assert len(key) == 16 and int(key, 16) >= 0
    assert run_key(json.loads(json.dumps(CFG, sort_keys=True))) == key  # key order is irrelevant
    moved = cfg_with(device="cuda:1", threads=8, data={"dir": "/scratch/x", "download": False})
    assert run_key(moved) == key
    lr = cfg_with(train={**CFG["train"], "lr": 1e-4})
    assert run_key(lr) != key
    assert run_key(cfg_with(seed=1)) != key
    assert CFG["device"] == "auto" and CFG["data"]["dir"] is None  # inputs are not modified


def test_uri_resolution_and_params(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    default = trk.resolve_uri(None, tmp_path)
    assert default == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert trk.resolve_uri(None, tmp_path) == "http://env:5000"
    assert trk.resolve_uri("http://cli:5000", tmp_path) == "http://cli:5000"
    flat = trk.flatten({"train": {"lr": 0.001, "betas": [0.9, 0.99]}, "a": {}, "s": "x" * 7000})
    assert flat == {"train.lr": "0.001", "train.betas": "[0.9, 0.99]", "a": "{}", "s": "x" * 6000}


def test_http_limits_apply_only_where_the_user_set_nothing(monkeypatch):
    for k in trk.HTTP_LIMITS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "99")
    with trk.http_limits("http://server"):
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "99"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    with trk.http_limits("sqlite:///x.db"):
        assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


# -- MLflow behaviour the design relies on -----------------------------------------------------
def test_mlflow_ignores_exact_duplicate_metric_rows_and_same_value_params(store):
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    uri, db = store
    c = MlflowClient(uri)
    run_id = c.create_run(trk.init_store(uri, "dup")).info.run_id
    batch = [Metric("m", float(i), 1000 + i, i) for i in range(50)]
    for _ in range(2):
        c.log_batch(run_id, metrics=batch, params=[Param("p", "1")], synchronous=True)
    c.log_metric(run_id, "m", 3.0, timestamp=1003, step=3)  # exact duplicate, single call
    assert rows(db) == [(50,)]
    c.log_metric(run_id, "m", 3.0, timestamp=9999, step=3)  # new timestamp → a new row
    assert rows(db) == [(51,)]  # ...which is why the mirror derives timestamps from steps
    with pytest.raises(Exception, match="Changing param values is not allowed"):
        c.log_batch(run_id, params=[Param("p", "2")], synchronous=True)


# -- the mirror -----------------------------------------------------------------------------
def test_mirror_reattaches_batches_metrics_and_uploads(store, tmp_path):
    uri, db = store
    rd = finished_run_dir(tmp_path / "run")
    m = Mirror(uri, "study", CFG, rd, {"grid": "demo"}, flush_every=200, flush_seconds=1e9)
    run_id = m.start()
    calls = []
    log_batch = m._client.log_batch
    m._client.log_batch = lambda *a, **k: (
        calls.append(len(k.get("metrics", []))) or log_batch(*a, **k)
    )
    for step in range(450):
        m.log_metrics({"train_loss": 1.0 / (step + 1), "skipped": math.nan}, step)
    assert calls == [200, 200]  # two full buffers, one log_batch each
    m.flush()
    assert calls == [200, 200, 50] and rows(db) == [(450,)]
    m.finish()

    again = Mirror(uri, "study", cfg_with(device="cpu", threads=4), rd)  # same key elsewhere
    assert again.start() == run_id and again.complete  # finish() uploaded the finished dir
    again.finish()
    client = again._client
    runs = client.search_runs([client.get_experiment_by_name("study").experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    t = run.data.tags
    assert t["hnet.run_key"] == run_key(CFG) and t["hnet.mirror"] == "complete"
    assert (t["method"], t["seed"], t["grid"], t["hnet.device"]) == ("hnet", "0", "demo", "cpu")
    assert run.data.params["train.lr"] == "0.001" and "device" not in run.data.params
    assert run.data.params["train.adam_betas"] == "[0.9, 0.999]"
    hist = {x.step: x.value for x in client.get_metric_history(run_id, "acc_task2")}
    assert hist == {0: 9.0, 1: 10.0, 2: 92.5, 3: 88.0}
    assert [x.step for x in client.get_metric_history(run_id, "acc_task3")] == [1, 2, 3]  # NaN
    assert {x.step for x in client.get_metric_history(run_id, "ti_task2")} == {2, 3}
    assert run.data.metrics["acc_final"] == 87.7 and "fwt" not in run.data.metrics
    losses = client.get_metric_history(run_id, "train_loss")
    assert {x.step for x in losses} >= {0, 50, 100, 150, 200, 250}  # task * iters + step
    arts = {a.path for a in client.list_artifacts(run_id)}
    assert arts == {"metrics.json", "config.json", "acc_matrix.csv", "acc_matrix.png"}
    assert not (rd / trk.PENDING).exists()


def test_matrix_csv_and_plot(tmp_path):
    plots.write_matrix_csv([[1.5, None], [2.0, math.nan]], tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_text() == "after_task,task1,task2\n1,1.5,\n2,2.0,\n"
    plots.plot_matrix(R, tmp_path / "r.png", "title", "accuracy (%)")
    big = [[float(i * j % 97) for j in range(40)] for i in range(40)]
    plots.plot_matrix(big, tmp_path / "big.png")  # no per-cell text at this size
    for f in ("r.png", "big.png"):
        assert (tmp_path / f).read_bytes()[:4] == b"\x89PNG"


def _concurrent_job(uri, seed, run_dir, barrier, results):
    """One parallel job: creates the experiment if missing, racing the others (the barrier makes
    them really start together), then mirrors a run."""
    barrier.wait(timeout=120)
    exp_id = trk.init_store(uri, "race")
    m = Mirror(uri, "race", cfg_with(seed=seed), run_dir, attempts=5, backoff=0.2)
    run_id = m.start()
    for step in range(20):
        m.log_metrics({"train_loss": 1.0 / (step + 1)}, step)
    m.finish()
    results.put((exp_id, run_id, m.enabled))


def test_parallel_processes_share_one_experiment(store, tmp_path):
    uri, db = store
    ctx = mp.get_context("forkserver")  # children fork from a server that imported mlflow once
    ctx.set_forkserver_preload(["hnet.tracking.mirror", "mlflow.store.tracking.sqlalchemy_store"])
    barrier, results = ctx.Barrier(8), ctx.Queue()
    dirs = [tmp_path / f"run{seed}" for seed in range(8)]
    procs = [
        ctx.Process(target=_concurrent_job, args=(uri, seed, d, barrier, results))
        for seed, d in enumerate(dirs)
    ]
    for p in procs:
        p.start()
    out = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0] * 8
    exp_ids, run_ids, healthy = zip(*out, strict=True)
    assert len(set(exp_ids)) == 1 and len(set(run_ids)) == 8 and all(healthy)
    names = rows(db, "select e.name, count(*) from runs r join experiments e "
                     "on r.experiment_id = e.experiment_id group by e.name")  # fmt: skip
    assert names == [("race", 8)]  # nothing fell into the Default experiment
    assert rows(db) == [(8 * 20,)]
    assert not any((d / trk.PENDING).exists() for d in dirs)


# -- a tracking store that is down ------------------------------------------------------------
@pytest.mark.parametrize("where", ["http", "sqlite"])
def test_store_down_never_fails_the_job_and_sync_catches_up(store, tmp_path, monkeypatch, where):
    for k in trk.HTTP_LIMITS:  # the mirror's own limits must keep a dead server short
        monkeypatch.delenv(k, raising=False)
    (tmp_path / "a_file").write_text("not a directory")
    bad = {"http": "http://127.0.0.1:9", "sqlite": f"sqlite:///{tmp_path}/a_file/mlflow.db"}[where]
    rd = finished_run_dir(tmp_path / "run")
    t0 = time.perf_counter()
    m = Mirror(bad, "study", CFG, rd, attempts=2, backoff=0.01)
    assert m.start() is None and not m.enabled
    m.on_event("loss", {"task": 0, "step": 0, "loss": 1.0})
    m.on_event("row", {"task": 0, "scores": R[0]})
    m.on_event("done", {})
    m.finish()
    assert time.perf_counter() - t0 < 15
    pending = json.loads((rd / trk.PENDING).read_text())
    assert pending["uri"] == bad and pending["experiment"] == "study" and pending["reason"]

    uri, db = store
    before = counts(db)
    run_id = sync(rd, uri)  # experiment "study" comes from mlflow_pending.json
    assert not (rd / trk.PENDING).exists()
    after = counts(db)
    assert after["runs"] == before["runs"] + 1
    n_losses = len((rd / "losses.jsonl").read_text().splitlines())
    # 6 losses + acc_task (3 init, one NaN) + R (9) + TI (6 non-null) + acc_final, bwt
    assert after["metrics"] - before["metrics"] == n_losses + 2 + 9 + 6 + 2
    assert after["params"] - before["params"] == len(trk.flatten(identity_config(CFG)))
    assert sync(rd, uri) == run_id and counts(db) == after  # complete: left alone
    assert sync(rd, uri, force=True) == run_id and counts(db) == after  # identical rows
    from mlflow.tracking import MlflowClient

    run = MlflowClient(uri).get_run(run_id)
    assert run.data.tags["hnet.mirror"] == "complete" and run.info.status == "FINISHED"
    assert run.data.tags["mlflow.source.git.commit"] == "0123abc"


def test_bad_input_switches_the_mirror_off_instead_of_raising(store, tmp_path):
    uri, db = store
    rd = tmp_path / "run"
    m = Mirror(uri, "study", CFG, rd)
    assert m.start() and m.enabled
    m.log_metrics({"text": "x", "list": [1], "flag": True, "none": None, "ok": 1}, 0)
    m.flush()
    assert m.enabled and rows(db) == [(1,)]  # non-numbers are skipped, not errors
    m.on_event("loss", {"task": 0})  # malformed event: never an exception in the training loop
    assert not m.enabled and (rd / trk.PENDING).exists()
    m.finish()


def test_sync_finds_the_experiment_of_a_live_mirrored_run(store, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    uri, db = store
    rd = finished_run_dir(tmp_path / "run")
    with Mirror(uri, "paper", CFG, rd) as m:
        pass
    assert sync(rd, uri) == m.run_id  # no pending file, no tracking section: found by key
    assert rows(db, "select count(*) from runs") == [(1,)]
    with pytest.raises(HnetError, match="not finished"):
        sync(tmp_path)


def test_cli_sync(store, tmp_path, capsys):
    from hnet.cli import main

    uri, _ = store
    dirs = [finished_run_dir(tmp_path / f"run{s}", cfg_with(seed=s)) for s in (0, 1)]
    assert main(["sync", *map(str, dirs), "--tracking-uri", uri, "--experiment", "cli"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and all(str(d) in line for d, line in zip(dirs, out, strict=True))


def test_live_job_then_rerun(store, tmp_path):
    """The real training loop feeding the mirror: live rows equal the file upload's rows."""
    import torch

    from hnet import config
    from hnet.job.run import run_job

    threads = torch.get_num_threads()  # run_job sets threads=1 for this process; restore it

    uri, db = store
    fast = {"train.iters": 20, "train.log_every": 5, "train.batch_size": 32}
    cfg = config.resolve("split_digits", "hnet", overrides=fast, threads=1, device="cpu")
    for attempt in range(2):  # the rerun returns early from run_job and must not add anything
        with Mirror(uri, "live", cfg, tmp_path / "run") as m:
            run_job(cfg, tmp_path / "run", progress=False, on_event=m.on_event)
        assert m.complete and m.enabled
        if attempt == 0:
            first = counts(db)
    assert counts(db) == first and first["runs"] == 1
    n_losses = len((tmp_path / "run" / "losses.jsonl").read_text().splitlines())
    hist = m._client.get_metric_history(m.run_id, "train_loss")
    assert len(hist) == n_losses == 5 * 5  # steps 0, 5, 10, 15, 19 of each task
    # memory after every task: logged live at step t + 1, the same rows the upload writes
    res = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for key, field in (("memory_task_mb", "total_mb"), ("memory_task_exemplars",
                                                         "exemplar_equivalents")):  # fmt: skip
        got = {x.step: x.value for x in m._client.get_metric_history(m.run_id, key)}
        assert got == {t + 1: r[field] for t, r in enumerate(res["memory"]["per_task"])}
    final = m._client.get_run(m.run_id).data.metrics
    assert final["memory_mb"] == res["memory_mb"] > 0
    assert final["memory_exemplars"] == res["memory_exemplars"]
    torch.set_num_threads(threads)
