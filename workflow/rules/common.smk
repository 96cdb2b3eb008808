# The study grid and the helpers of all rules. Parsing must stay cheap (no torch), so the grid
# comes from hnet.study.grid, which only reads hnet's torch-free catalog.
import os
import shlex
import shutil
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from hnet.errors import HnetError
from hnet.report.layout import FIGURE_KINDS
from hnet.study.grid import Cell, expand, resources, train_args
from hnet.tracking.store import is_live, resolve_uri

try:
    CELLS = expand(config)
except HnetError as e:
    raise WorkflowError(str(e)) from None

STUDY = config["study"]
OUT = f"results/{STUDY}"  # the study's directory
RUNS = f"{OUT}/runs"  # one run directory per cell
LOGS = f"{OUT}/logs"
CELL_PATTERN = "{benchmark}/{scenario}/{method}/{size}/seed{seed}"
CELL_METRICS = [f"{RUNS}/{c.path}/metrics.json" for c in CELLS]
BY_PATH = {c.path: c for c in CELLS}

# Jobs call the `hnet` command. When Snakemake runs from a venv that is not activated
# (e.g. .venv/bin/snakemake), put that venv's bin/ on the PATH the jobs inherit. This is done
# here rather than in the shell commands, so moving the checkout changes no job's parameters
# (which would make Snakemake rerun every cell).
if shutil.which("hnet") is None:
    venv_bin = os.path.dirname(sys.executable)
    os.environ.update(PATH=os.pathsep.join([venv_bin, os.environ.get("PATH", "")]))

# MLflow: results/<study>/mlflow.db unless the config or $MLFLOW_TRACKING_URI names a server.
# Resolved here once and written by rule mlflow_init into {OUT}/mlflow.json, which every training
# job reads (hnet train --tracking-file): the destination travels in a file, not in the jobs'
# command lines (a new server address must not rerun every cell) nor in hidden environment.
TRACKING = config["tracking"]
TRACKING_URI = resolve_uri(TRACKING["uri"], results_dir=OUT)
EXPERIMENT = TRACKING["experiment"] or STUDY
LIVE = is_live(TRACKING_URI, TRACKING["live"])


def cell_of(wildcards) -> Cell:
    path = CELL_PATTERN.format(**wildcards)
    if path not in BY_PATH:
        raise WorkflowError(f"{path} is not a cell of study {STUDY!r}.")
    return BY_PATH[path]


def job_args(wildcards) -> str:
    """hnet train arguments of a cell. Where its MLflow run goes is not among them (it is in
    the tracking file): a new tracking server address must not make Snakemake rerun every cell.
    """
    return train_args(config, cell_of(wildcards))


def job_resource(name):
    return lambda wildcards: resources(config, wildcards.benchmark)[name]


FIGURE_CAPTIONS = {
    kind: f"**{title}** (benchmark and scenario in the labels). {description} "
    "Metric definitions: docs/metrics.md in the hnet repository."
    for kind, (title, description) in FIGURE_KINDS.items()
}


def report_outputs():
    """Everything the aggregate step writes (the study's tables and figure directories)."""
    return [f"{OUT}/tables"] + [f"{OUT}/figures/{kind}" for kind in FIGURE_KINDS]


def study_targets():
    targets = [*CELL_METRICS, *report_outputs()]
    if not LIVE:
        targets.append(f"{OUT}/mlflow_sync.json")
    return targets


def partial_report():
    """After a failed run (e.g. --keep-going with a failing cell): report the cells that did
    finish, list the missing and failed ones, and mirror the finished ones to MLflow."""
    import subprocess

    grid = Path(OUT) / "grid.json"
    if not grid.exists() or not any(Path(RUNS).rglob("metrics.json")):
        return
    hnet = [sys.executable, "-m", "hnet.cli"]
    print(
        f"hnet: writing a partial report of study {STUDY!r} to {OUT}/", file=sys.stderr
    )
    subprocess.run(
        [*hnet, "report", RUNS, "--out", OUT, "--expected", str(grid)], check=False
    )
    if not LIVE:
        sync = [
            *hnet,
            "sync",
            RUNS,
            "--tracking-uri",
            TRACKING_URI,
            "--experiment",
            EXPERIMENT,
        ]
        subprocess.run(sync, check=False, stdout=subprocess.DEVNULL)
