"""64 jobs logging live at once to an MLflow server on PostgreSQL, through hnet's own mirror.

Each writer replays a real job's logging without training: the run directory of one real
`hnet train` job, copied with its own seed (so its own run key), goes through the same
``Mirror`` calls a study job makes (find or create the run with the job's tags and params, the
loss curve and one accuracy row per task as they happen, then the final upload of metrics and
artifacts, the ``complete`` tag and the end of the run). The invariants are asserted (64 runs,
no metric lost, no duplicate run); the figures (latency of every MLflow call, server memory)
are printed."""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cli import env, train_argv

pytestmark = pytest.mark.cluster
WRITERS = 64
EXPERIMENT = "scale64"


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    """The run directory of one real, small `hnet train` job (5 tasks, 20 steps each)."""
    out = tmp_path_factory.mktemp("real") / "run"
    cmd = train_argv(
        out, "--threads", "1", "-q", "--no-tracking", sets={"train.iters": 20, "train.log_every": 1}
    )
    res = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return out


def writer_dir(real: Path, root: Path, i: int) -> Path:
    """A copy of the real run as cell ``seed=1000+i`` (a distinct run key)."""
    d = root / f"w{i:02d}"
    shutil.copytree(real, d, ignore=shutil.ignore_patterns("state"))
    cfg = json.loads((d / "config.json").read_text())
    cfg["seed"] = 1000 + i
    res = json.loads((d / "metrics.json").read_text())
    res["seed"], res["config"] = cfg["seed"], cfg
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "metrics.json").write_text(json.dumps(res))
    return d


def replay(uri: str, run_dir: str, barrier, results) -> None:
    """One writer (a forked process): the job's logging, every MLflow call timed."""
    from hnet.tracking.mirror import Mirror

    class Timed(Mirror):
        def _call(self, fn, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return super()._call(fn, *args, **kwargs)
            finally:
                self.latencies.append(time.perf_counter() - t0)

    d = Path(run_dir)
    cfg = json.loads((d / "config.json").read_text())
    res = json.loads((d / "metrics.json").read_text())
    losses = [json.loads(line) for line in (d / "losses.jsonl").read_text().splitlines()]
    m = Timed(uri, EXPERIMENT, cfg, d, tags={"grid": "scale64"})
    m.latencies = []
    barrier.wait()
    t0 = time.perf_counter()
    with m:
        by_task: dict[int, list] = {}
        for r in losses:
            by_task.setdefault(r["task"], []).append(r)
        for task, row in enumerate(res["acc_matrix"]):
            for r in by_task.get(task, []):
                m.on_event("loss", r)
            m.on_event("row", {"task": task, "scores": row})
        m.on_event("done", {})
    results.put(
        {
            "run_dir": run_dir,
            "run_id": m.run_id,
            "enabled": m.enabled,
            "complete": m.complete,
            "latencies": m.latencies,
            "wall": time.perf_counter() - t0,
        }
    )


def expected_rows(run_dir: Path) -> set[tuple[str, int, float]]:
    """Every (metric, step, value) the writer logged, from the same scheme the mirror uses."""
    from hnet.tracking.mirror import metric_rows
    from hnet.tracking.plots import is_bad

    res = json.loads((run_dir / "metrics.json").read_text())
    cfg = json.loads((run_dir / "config.json").read_text())
    rows = set()
    for values, step in metric_rows(run_dir, res, cfg):
        for k, v in values.items():
            if not is_bad(v):
                rows.add((k, int(step), float(v)))
    return rows


def test_64_concurrent_writers_lose_nothing(pg_mlflow_server, real_run, tmp_path):
    import matplotlib  # imported before forking: each writer plots its matrix artifact

    matplotlib.use("Agg")
    import matplotlib.pyplot
    from mlflow import MlflowClient

    import hnet.tracking.mirror  # noqa: F401  (and mlflow, once, shared by the forks)
    from hnet.tracking.store import init_store

    server = pg_mlflow_server
    ctx = mp.get_context("fork")
    # the experiment is created once before the jobs, as mlflow_init does; in a child, so that
    # no HTTP connection of this process is inherited by the forked writers
    init = ctx.Process(target=init_store, args=(server.uri, EXPERIMENT))
    init.start()
    init.join(timeout=120)
    assert init.exitcode == 0
    dirs = [writer_dir(real_run, tmp_path, i) for i in range(WRITERS)]
    barrier, results = ctx.Barrier(WRITERS), ctx.Queue()
    peak = [server.rss_mb()]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.25):
            peak.append(server.rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    procs = [ctx.Process(target=replay, args=(server.uri, str(d), barrier, results)) for d in dirs]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    got = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    wall = time.monotonic() - t0
    stop.set()
    sampler.join()
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]

    # invariants: every writer's mirror stayed on and finished its run
    assert all(g["enabled"] and g["complete"] for g in got), [g for g in got if not g["enabled"]]
    assert not list(tmp_path.glob("*/mlflow_pending.json"))
    client = MlflowClient(server.uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    keys = [r.data.tags["hnet.run_key"] for r in runs]
    duplicates = len(keys) - len(set(keys))
    assert len(runs) == WRITERS, f"{len(runs)} runs for {WRITERS} writers"
    assert duplicates == 0
    assert {r.info.run_id for r in runs} == {g["run_id"] for g in got}
    assert all(
        r.info.status == "FINISHED" and r.data.tags["hnet.mirror"] == "complete" for r in runs
    )

    # nothing lost: what each writer logged is what the server returns
    by_dir = {r.data.tags["hnet.run_dir"]: r for r in runs}

    retried = []

    def read(fn, *args):
        """A read, retried like the mirror retries its writes: reads are idempotent, and a
        server busy with 64 writers may still be draining its connection pool."""
        for attempt in range(4):
            try:
                return fn(*args)
            except Exception:
                if attempt == 3:
                    raise
                retried.append(fn.__name__)
                time.sleep(2.0 * 2**attempt)

    def lost_in(d: Path) -> tuple[int, int, int]:
        want = expected_rows(d)
        run = by_dir[str(d.resolve())]
        have, n = set(), 0
        for key in {k for k, _, _ in want}:
            hist = read(client.get_metric_history, run.info.run_id, key)
            n += len(hist)
            have |= {(m.key, m.step, m.value) for m in hist}
        artifacts = {a.path for a in read(client.list_artifacts, run.info.run_id)}
        missing_art = {"metrics.json", "config.json", "acc_matrix.csv", "acc_matrix.png"}
        return len(want - have), n - len(have), len(missing_art - artifacts)

    t_verify = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        checks = list(pool.map(lost_in, dirs))
    t_verify = time.monotonic() - t_verify
    lost = sum(c[0] for c in checks)
    duplicate_rows = sum(c[1] for c in checks)
    missing_artifacts = sum(c[2] for c in checks)
    logged = sum(len(expected_rows(d)) for d in dirs)
    lat = sorted(x for g in got for x in g["latencies"])
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
    print(
        f"\n64 writers → MLflow server on PostgreSQL: runs created {len(runs)}, "
        f"duplicate runs {duplicates}, metric values logged {logged}, lost {lost}, "
        f"duplicate rows {duplicate_rows}, missing artifacts {missing_artifacts}; "
        f"{len(lat)} MLflow calls: latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"max {lat[-1] * 1000:.0f} ms; writer wall p50 "
        f"{statistics.median(g['wall'] for g in got):.1f} s, all writers {wall:.1f} s, "
        f"verification {t_verify:.1f} s ({len(retried)} reads retried); "
        f"server RSS (process tree) {peak[0]:.0f} MB idle, {max(peak):.0f} MB peak"
    )
    assert lost == 0 and duplicate_rows == 0 and missing_artifacts == 0
