"""The report's state of the study: per-method counts as ``hnet status`` classifies the cells,
the failed cells' first error line, compute hours from the finished cells' timings, and a
front-page section that reStructuredText renders without complaint."""

from __future__ import annotations

import csv
import io
import json

import pytest
from synthetic_runs import write_status_study

from hnet.report.state import compute_hours, state_files
from hnet.study.status import (
    DONE,
    FAILED_STATE,
    INTERRUPTED,
    NOT_STARTED,
    RUNNING,
    STATES,
    load_study,
    study_status,
)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("state") / "s"
    written = write_status_study(root, 240, seeds=4)
    return root, written, state_files(root / "grid.json")


def test_counts_per_method_are_hnet_status_counts(study):
    root, written, files = study
    rows = list(csv.DictReader(io.StringIO(files["state.csv"])))
    assert sum(int(r["expected"]) for r in rows) == 240
    for name in STATES:
        assert sum(int(r[name]) for r in rows) == written[name]
    status = study_status(load_study(root))
    for r in rows:
        cells = [s for s in status.cells if s.cell.method == r["method"]]
        assert int(r["expected"]) == len(cells)
        assert all(int(r[k]) == v for k, v in status.counts(cells).items())


def test_compute_hours_are_train_seconds_times_threads_or_one_gpu(study):
    root, _, files = study
    rows = {r["method"]: r for r in csv.DictReader(io.StringIO(files["state.csv"]))}
    want: dict[str, float] = {}
    for f in (root / "runs").rglob("metrics.json"):
        m = json.loads(f.read_text())
        want[m["method"]] = want.get(m["method"], 0.0) + m["train_seconds"] * 1 / 3600  # 1 thread
    for method, hours in want.items():
        assert float(rows[method]["cpu_core_hours"]) == pytest.approx(hours, abs=1e-4)
        assert float(rows[method]["gpu_hours"]) == 0.0
    gpu = compute_hours({"train_seconds": 7200, "device": "cuda:0", "threads": 8})
    assert gpu["gpu_hours"] == 2.0 and gpu["cpu_core_hours"] == 0.0
    cpu = compute_hours({"train_seconds": 3600, "device": "cpu", "threads": 4})
    assert cpu["cpu_core_hours"] == 4.0 and cpu["train_hours"] == 1.0


def test_failed_cells_and_what_is_counted_are_on_the_front_page(study):
    from docutils.core import publish_parts

    _, written, files = study
    md, rst = files["state.md"], files["state.rst"]
    assert f"## Failed cells ({written['failed']})" in md
    assert md.count("TrainingDiverged: Training diverged: the loss is nan") == written["failed"]
    assert "The last good checkpoint" not in md  # the first line of the error only
    assert "times the CPU threads" in md and "times the CPU" in rst
    html = publish_parts(rst, writer="html", settings_overrides={"report_level": 1})
    body = html["html_body"]
    assert "system-message" not in body, body
    assert body.count("TrainingDiverged") == written["failed"]
    assert "<table" in body and "not started" in body


def test_missing_cells_are_in_hnet_status_words(study):
    """tables/missing.* classifies each unfinished cell as ``hnet status`` does (one
    classification), with the resume point or the running process in its message."""
    import pandas as pd

    from hnet.report.missing import load_grid, missing_cells

    root, written, _ = study
    status = study_status(load_study(root))
    done = [s.cell.run_dir for s in status.cells if s.state == DONE]
    missing, _ = missing_cells(load_grid(root / "grid.json"), root, pd.DataFrame({"run_dir": done}))
    assert len(missing) == 240 - written[DONE] > 0
    expected = {s.cell.run_dir: s.state for s in status.cells if s.state != DONE}
    assert dict(zip(missing["run_dir"], missing["status"], strict=True)) == expected
    by_state = missing.groupby("status")["message"]
    assert all(m.startswith("running on ") for m in by_state.get_group(RUNNING))
    assert all("rerun" in m for m in by_state.get_group(INTERRUPTED))
    assert all(m == "" for m in by_state.get_group(NOT_STARTED))
    assert {RUNNING, INTERRUPTED, NOT_STARTED, FAILED_STATE} <= set(missing["status"])
