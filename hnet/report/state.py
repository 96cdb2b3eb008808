"""The study's state for the report: cells done, running, interrupted, failed and not started
per method, the failed cells' first error line, and the compute the finished cells took.

The classification is :mod:`hnet.study.status`'s, the one ``hnet status`` prints, so the report
and the command never disagree. Compute, per finished cell, is its training seconds (the
training loop only, summed over resumed attempts; a packed seed's share of its pack; data
loading, start-up and evaluation not included) times the CPU threads it trained with, or times
one GPU for a CUDA job. ``job_hours`` adds what the training loop leaves out: the time each
job held its slot (:func:`hnet.study.eta.job_seconds`).

    OUT/tables/state.csv   one row per method (tuning cells apart): counts and hours
    OUT/tables/state.md    the same, and the failed cells with their error and log
    OUT/tables/state.rst   the same for the HTML report's front page (workflow/report/workflow.rst)
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from hnet.report.runs import method_key
from hnet.study.eta import job_seconds
from hnet.study.status import DONE, FAILED_STATE, STATES, StudyStatus, load_grid_file, study_status

HOURS = ("train_hours", "cpu_core_hours", "gpu_hours", "job_hours")
COLUMNS = ["method", "stage", "expected", *STATES, *HOURS]
COUNTED = (
    "Compute counts finished cells only: training seconds (the training loop, summed over "
    "resumed attempts; data loading, start-up and evaluation not included) times the CPU "
    "threads a job trained with (CPU core-hours) or times one GPU (GPU-hours); job hours are "
    "the time each job held its slot, start-up and evaluation included."
)


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


def compute_hours(metrics: dict[str, Any]) -> dict[str, float]:
    """One finished cell's hours by kind, from the timings in its metrics.json."""
    train = _num(metrics.get("train_seconds"))
    gpu = str(metrics.get("device") or "cpu").startswith("cuda")
    threads = max(1.0, _num(metrics.get("threads")))
    return {
        "train_hours": train / 3600,
        "cpu_core_hours": 0.0 if gpu else train * threads / 3600,
        "gpu_hours": train / 3600 if gpu else 0.0,
        "job_hours": (job_seconds(metrics) or 0.0) / 3600,
    }


def state_rows(status: StudyStatus) -> list[dict[str, Any]]:
    """One row per method and stage, in the report's method order."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for s in status.cells:
        key = (s.cell.method, s.cell.stage)
        row = rows.setdefault(
            key,
            {"method": key[0], "stage": key[1], "expected": 0}
            | dict.fromkeys(STATES, 0)
            | dict.fromkeys(HOURS, 0.0),
        )
        row["expected"] += 1
        row[s.state] += 1
        if s.state == DONE:
            for k, v in compute_hours(s.metrics).items():
                row[k] += v
    order = sorted(rows, key=lambda k: (k[1] != "final", method_key(k[0])))
    return [rows[k] for k in order]


def state_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    return out.getvalue()


def headline(status: StudyStatus) -> str:
    counts, total = status.counts(), len(status.cells)
    parts = ", ".join(f"{counts[k]} {k}" for k in STATES if counts[k])
    return f"Study {status.study.name}: {total} expected cells: {parts}."


def _hours(v: float) -> str:
    return f"{v:.3g}" if v else "0"


def state_markdown(status: StudyStatus, rows: list[dict[str, Any]]) -> str:
    lines = ["# State of the study", "", headline(status), "", COUNTED, ""]
    head = ["method", "stage", "expected", *STATES, "train h", "CPU core-h", "GPU-h", "job h"]
    lines += ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for r in rows:
        cells = [r["method"], r["stage"], r["expected"], *(r[k] for k in STATES)]
        cells += [_hours(r[k]) for k in HOURS]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    failed = status.of(FAILED_STATE)
    if failed:
        lines += ["", f"## Failed cells ({len(failed)})", ""]
        for s in failed:
            error = s.error.replace("|", "\\|")
            lines.append(f"- `{s.cell.run_dir}`: {error} (log: `{s.log}`)")
    return "\n".join(lines) + "\n"


def _rst(text: str) -> str:
    """Plain text safe inside reStructuredText: inline markup characters escaped."""
    return "".join("\\" + ch if ch in "\\`*_|[]<>:" else ch for ch in text)


def state_rst(status: StudyStatus, rows: list[dict[str, Any]]) -> str:
    """The front page's section: headline, the table per method, the failed cells."""
    head = ["method", "stage", "expected", *STATES, "train h", "CPU core-h", "GPU-h", "job h"]
    lines = [
        f"**State of the study.** {_rst(headline(status))} {_rst(COUNTED)}",
        "",
        ".. csv-table:: Cells and compute per method",
        "   :header: " + ", ".join(f'"{h}"' for h in head),
        "",
    ]
    for r in rows:
        cells = [r["method"], r["stage"], r["expected"], *(r[k] for k in STATES)]
        cells += [_hours(r[k]) for k in HOURS]
        lines.append("   " + ", ".join(f'"{_rst(str(c))}"' for c in cells))
    failed = status.of(FAILED_STATE)
    if failed:
        lines += ["", f"Failed cells ({len(failed)}), each with the first line of its error:", ""]
        for s in failed:
            lines.append(f"- {_rst(s.cell.run_dir)}: {_rst(s.error)} (log: {_rst(s.log)})")
    return "\n".join(lines) + "\n"


def state_files(grid: str | Path) -> dict[str, str]:
    """The three files' contents for the study whose grid file is ``grid`` (its run
    directories are beside it, as the workflow writes them)."""
    status = study_status(load_grid_file(Path(grid)))
    rows = state_rows(status)
    return {
        "state.csv": state_csv(rows),
        "state.md": state_markdown(status, rows),
        "state.rst": state_rst(status, rows),
    }
