"""The real MLflow UI, driven by a headless browser (Debian's chromium), over the store of a tiny
study mirrored after the fact: the experiment's runs table lists every run with its real
duration (its training, not the ~200 ms of an upload), its source and its dataset.

chromium renders the single-page app and prints the resulting DOM (``--dump-dom``); no browser
driver is needed. tests/integration/chromium-up.sh installs chromium when missing (root, as on
CI); without it the test is skipped with the script's reason.

``HNET_UI_SCREENSHOT=PATH`` also saves a screenshot of the runs table (docs/img/ holds one of
the default study's).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from cli import env, train_argv
from servers import stop_group, wait_healthy

from hnet.tracking.store import default_uri
from hnet.tracking.sync import sync_many

HERE = Path(__file__).parent
ENV = env(MLFLOW_TRACKING_URI=None, MLFLOW_EXPERIMENT_NAME=None)
STEPS = {"train.iters": 100, "train.log_every": 50}
EXPERIMENT = "ui"


@pytest.fixture(scope="module")
def chromium() -> str:
    res = subprocess.run(
        ["bash", str(HERE / "chromium-up.sh")], capture_output=True, text=True, timeout=900
    )
    if res.returncode != 0:
        lines = (res.stderr or res.stdout).strip().splitlines() or ["no output"]
        pytest.skip(f"no headless browser for the MLflow UI test: {lines[-1]}")
    return res.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def study_store(tmp_path_factory):
    """Two finished cells of a tiny split_digits study, mirrored after the fact (as a local
    study's sync step does): the store's URI and each run dir's metrics."""
    root = tmp_path_factory.mktemp("ui")
    outs = [root / "runs" / f"seed{seed}" for seed in (0, 1)]
    jobs = [
        subprocess.Popen(
            train_argv(out, "-m", "finetune", "--no-tracking", "--quiet", seed=i, sets=STEPS),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for i, out in enumerate(outs)
    ]
    for job in jobs:
        assert job.wait(timeout=900) == 0, job.stderr.read()[-2000:]
    uri = default_uri(root)
    done = sync_many(outs, uri=uri, experiment=EXPERIMENT)
    assert len(done.synced) == 2, done
    return uri, {out: json.loads((out / "metrics.json").read_text()) for out in outs}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ui(study_store, tmp_path_factory):
    """``mlflow server`` (what ``mlflow ui`` starts) over the study's store; its address."""
    uri, _ = study_store
    port, log = free_port(), tmp_path_factory.mktemp("server") / "server.log"
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent))
    cmd = [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    cmd += ["--backend-store-uri", uri, "--artifacts-destination", str(log.parent / "art")]
    with open(log, "w") as f:
        proc = subprocess.Popen(
            cmd,
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**ENV, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
    address = f"http://127.0.0.1:{port}"
    from mlflow import MlflowClient

    try:
        wait_healthy(address, proc, log, seconds=180)
        warm_up(address, MlflowClient(uri).get_experiment_by_name(EXPERIMENT).experiment_id)
        yield address
    finally:
        stop_group(proc)


def warm_up(address: str, experiment_id: str) -> None:
    """Make the search the runs table makes once before a browser does: a cold server's first
    answer (imports, the store's first query) can outlast the page's virtual-time budget."""
    query = json.dumps({"experiment_ids": [experiment_id], "max_results": 10}).encode()
    request = urllib.request.Request(
        f"{address}/ajax-api/2.0/mlflow/runs/search",
        data=query,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        assert len(json.loads(answer.read())["runs"]) == 2


def browse(chromium: str, url: str, *args: str, budget: int = 30_000) -> str:
    """The page at ``url`` as chromium renders it headless (scripts run for up to ``budget`` ms
    of virtual time), then whatever ``args`` ask for (--dump-dom: printed)."""
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    cmd += ["--hide-scrollbars", f"--virtual-time-budget={budget}", "--window-size=1600,800"]
    res = subprocess.run([*cmd, *args, url], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def visible_text(dom: str) -> str:
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


def shown_seconds(duration: str) -> float:
    """The UI's duration text ('35.7s', '2.1min', '1.0h', '97ms') in seconds."""
    value, unit = re.fullmatch(r"([\d.]+)(ms|s|min|h)", duration).groups()
    return float(value) * {"ms": 0.001, "s": 1, "min": 60, "h": 3600}[unit]


def table_rows(text: str, results: dict) -> list[tuple[str, str]]:
    """(duration, source) of each runs-table row showing a result's dataset: name … dataset
    (digest) context … duration, source. The runs share their data (one digest), so rows are
    matched to results by duration later, not by order."""
    pattern = r" (?:\+\d+ )?([\d.]+(?:ms|s|min|h)) (\S+)"
    datasets = {f"{r['benchmark']} ({r['data_digest']}) train" for r in results.values()}
    return [row for d in datasets for row in re.findall(re.escape(d) + pattern, text)]


def test_runs_table_shows_real_durations_source_and_dataset(chromium, study_store, ui, tmp_path):
    from mlflow import MlflowClient

    uri, results = study_store
    exp = MlflowClient(uri).get_experiment_by_name(EXPERIMENT)
    url = f"{ui}/#/experiments/{exp.experiment_id}/runs?workflowType=machine_learning"
    # a loaded machine may not fetch and render the whole table within one virtual-time budget:
    # look again, with a longer budget, until every run's row (dataset, duration, source) shows
    for budget in (30_000, 60_000, 90_000, 120_000):
        dom = browse(chromium, url, "--dump-dom", budget=budget)
        text = visible_text(dom)
        rows = table_rows(text, results)
        if f"{len(results)} matching runs" in text and len(rows) == len(results):
            break
    if len(rows) != len(results):
        (tmp_path / "runs.html").write_text(dom)
        pytest.fail(
            f"the runs table shows {len(rows)} rows with dataset, duration and source, not "
            f"{len(results)}: {rows}; page saved to {tmp_path / 'runs.html'}; its text:\n{text}",
            pytrace=False,
        )
    for res in results.values():
        assert f"split_digits/cl1/finetune/official/seed{res['seed']}" in text, text
    for res in results.values():
        took = (res["finished_at"] - res["started_at"]) * 1000

        def fits(row, res=res, took=took):
            shown = shown_seconds(row[0])
            # the run's real duration, to the UI's rounding, covering its training time
            return (
                abs(shown * 1000 - took) <= max(0.06 * took, 100)
                and shown >= res["train_seconds"] * 0.94
                and row[1] in (res["git_repository"], Path(res["git_repository"]).name)
            )

        match = next((r for r in rows if fits(r)), None)
        assert match, (rows, took, res["train_seconds"])
        rows.remove(match)
    picture = os.environ.get("HNET_UI_SCREENSHOT")
    if picture:
        browse(chromium, url, f"--screenshot={Path(picture).resolve()}")
        assert Path(picture).stat().st_size > 10_000
