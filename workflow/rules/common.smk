# The study grid and the helpers of all rules. Parsing must stay cheap (no torch), so the grid
# comes from hnet.study.grid, which only reads hnet's torch-free catalog.
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from hnet.errors import HnetError
from hnet.report.layout import FIGURE_KINDS, figure_labels, figure_pattern
from hnet.study.grid import (
    Cell,
    expand,
    hnet_reference,
    resources,
    swept,
    train_args,
    tuning_cells,
    tuning_record,
)
from hnet.rundir import move_aside
from hnet.study.autores import AutoResources
from hnet.study.batches import NAME_PATTERN as BATCH_NAME
from hnet.study.batches import RECORDS, batches, by_cell
from hnet.study.packs import pack_args, pack_name, packs
from hnet.study.repair import (
    damage_message,
    damaged_results,
    missing_store,
    store_message,
)
from hnet.study.select import selected_for
from hnet.tracking.status import SYNC_RECORD, mirror_message, skipped_runs
from hnet.tracking.store import is_live, resolve_uri

try:
    CELLS = expand(config)
    TUNING = tuning_cells(config, CELLS)  # [] unless the study sweeps (docs/studies.md)
    PACKS = packs(config, CELLS)  # [] unless pack_seeds > 1 (docs/studies.md)
    # [] unless cluster.cells_per_job > 1 (docs/cluster.md)
    BATCHES = batches(config, CELLS, TUNING, PACKS)
except HnetError as e:
    raise WorkflowError(str(e)) from None

STUDY = config["study"]
OUT = f"results/{STUDY}"  # the study's directory
RUNS = f"{OUT}/runs"  # one run directory per cell
LOGS = f"{OUT}/logs"
CELL_PATTERN = "{benchmark}/{scenario}/{method}/{size}/seed{seed}"
CELL_METRICS = [f"{RUNS}/{c.path}/metrics.json" for c in CELLS]
BY_PATH = {c.path: c for c in CELLS}
# Studies with sweeps: tuning cells (a point of the sweep in their path, a validation split) and
# the selection they feed; the final cells of swept methods train with the selected values.
TUNING_RUNS = f"{OUT}/tuning/runs"
TUNING_PATTERN = "{benchmark}/{scenario}/{method}/{size}/{point}/seed{seed}"
TUNING_METRICS = [f"{TUNING_RUNS}/{c.path}/metrics.json" for c in TUNING]
TUNING_BY_PATH = {c.path: c for c in TUNING}
SELECTION = f"{OUT}/tuning/selection.json"
# Grouped submission (cluster.cells_per_job > 1, docs/cluster.md): each batch of cells is one
# Snakemake group job, i.e. one cluster job training its cells one after another. The batch's
# record (written by rule batch_done, last in the group) joins its cells into one connected
# piece of the DAG: Snakemake puts connected jobs of one group name into one group job.
BATCH_OF = by_cell(BATCHES)
BATCH_BY_NAME = {b.name: b for b in BATCHES}
BATCH_RECORDS = [f"{OUT}/{RECORDS}/{b.name}.json" for b in BATCHES]

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
REQUIRED = TRACKING[
    "required"
]  # an incomplete mirror fails the study (else: one message)


# A rerun repairs what file times do not show (hnet.study.repair). A damaged metrics.json is
# moved aside (kept as metrics.json.old-<time>): its cell's job runs again and recomputes the
# file from the final checkpoint. A deleted or moved SQLite store: the sync step's record is
# moved aside (and the step made a target also for live studies), so the sync step runs again
# and rebuilds the store from the run directories. Both happen while the Snakefile parses (before Snakemake can tell a dry run from a real
# one), so `snakemake -n` lists those jobs; only the main process looks (cluster jobs parse this
# file too).
REBUILD_STORE = None
if workflow.is_main_process:
    _damaged = damaged_results(CELL_METRICS + TUNING_METRICS)
    if _damaged:
        print(damage_message(_damaged), file=sys.stderr)
        for _path in sorted(_damaged):
            move_aside(Path(_path), "the damaged metrics.json")
    REBUILD_STORE = missing_store(TRACKING_URI, f"{OUT}/mlflow.json")
    if REBUILD_STORE is not None:
        _finished = sum(os.path.exists(m) for m in CELL_METRICS + TUNING_METRICS)
        print(store_message(STUDY, REBUILD_STORE, _finished), file=sys.stderr)
        if os.path.exists(f"{OUT}/{SYNC_RECORD}"):
            move_aside(
                Path(f"{OUT}/{SYNC_RECORD}"), "the record of the last MLflow sync"
            )


def cell_of(wildcards) -> Cell:
    tuning = "point" in wildcards.keys()
    path = (TUNING_PATTERN if tuning else CELL_PATTERN).format(**wildcards)
    cells = TUNING_BY_PATH if tuning else BY_PATH
    if path not in cells:
        raise WorkflowError(f"{path} is not a cell of study {STUDY!r}.")
    return cells[path]


_SELECTION_CACHE: dict = {}


def selected_values(cell: Cell):
    """The values selected for the cell's group, from the selection file (None before it
    exists). Read again whenever the file changes: after the checkpoint ``select`` has run,
    Snakemake re-evaluates the jobs that wait for it."""
    path = Path(SELECTION)
    if not path.exists():
        return None
    stat = path.stat()
    key = (stat.st_mtime_ns, stat.st_size)
    if _SELECTION_CACHE.get("key") != key:
        _SELECTION_CACHE.update(key=key, data=json.loads(path.read_text()))
    return selected_for(_SELECTION_CACHE["data"], cell.group)


def job_args(wildcards) -> str:
    """hnet train arguments of a cell. Where its MLflow run goes is not among them (it is in
    the tracking file): a new tracking server address must not make Snakemake rerun every cell.
    A final cell of a swept method adds the selected values; they are part of its params, so a
    selection that changes reruns exactly the cells whose values changed."""
    cell = cell_of(wildcards)
    if cell.point or not swept(config, cell):
        return train_args(config, cell)
    selected = selected_values(cell)
    if selected is None:
        # only before the checkpoint has run (dry runs): such a job is never executed
        return train_args(config, cell) + " --set SELECTED_BY_TUNING"
    return train_args(config, cell, selected)


def selection_input(wildcards):
    """Final cells of swept methods wait for the selection checkpoint. ancient(): rewriting the
    selection file reruns no cell by itself; changed values do, through the params."""
    cell = cell_of(wildcards)
    if not swept(config, cell):
        return []
    return ancient(checkpoints.select.get().output[0])


# resources: auto (docs/cluster.md): runtime and mem_mb per benchmark × method from the study's
# finished cells or results/<study>/bench.json, measured lazily (a cluster job re-parsing this
# file reads only its own pair). The main process says what the auto pairs ask for.
AUTO_RESOURCES = AutoResources(config, OUT, CELLS + TUNING)
if workflow.is_main_process:
    for _line in AUTO_RESOURCES.lines():
        print(_line, file=sys.stderr)


def job_resource(name):
    if name in ("runtime", "mem_mb"):
        return lambda wildcards: AUTO_RESOURCES.value(
            wildcards.benchmark, wildcards.method, name
        )
    return lambda wildcards: resources(config, wildcards.benchmark)[name]


def batch_of(wildcards):
    """The Snakemake group of a training job: its batch (None: submitted alone)."""
    return BATCH_OF.get(cell_of(wildcards)) if BATCHES else None


if BATCHES:
    # A group job's resources are laid out in layers no wider than the workflow's resources;
    # the layers' runtimes add up, their memory and threads are the largest layer's. The SLURM
    # executor runs a group's jobs one at a time (its job step runs Snakemake with --jobs 1),
    # so one training job per layer: each asks for one `hnet_cell` of the one there is. The
    # resource is local (not counted across cluster jobs), and local runs, where groups do
    # not apply, ask for none (cell_slot).
    workflow.register_resource("hnet_cell", 1)

    resource_scopes:
        hnet_cell="local",


def batch_warning():
    """Before the first job of a grouped cluster study: when a group job fails (a batch killed
    at its time limit, say), Snakemake deletes the outputs of *all* its jobs unless it keeps
    incomplete outputs, so the batch's finished cells would lose their metrics.json (the rerun
    recomputes them from their final checkpoints, without training, but needlessly). A failed
    hnet job never leaves a partial metrics.json (it is written atomically at the end), so
    keeping them is safe; the SLURM profile sets keep-incomplete."""
    if BATCHES and not workflow.local_exec:
        if not workflow.execution_settings.keep_incomplete:
            print(
                "hnet: cluster.cells_per_job is set but Snakemake runs without "
                "--keep-incomplete: a failed batch would delete its finished cells' "
                "metrics.json (recomputed on the rerun without training). Add "
                "keep-incomplete: true to the profile (workflow/profiles/slurm has it).",
                file=sys.stderr,
            )


def cell_slot(wildcards):
    """`hnet_cell` of a training job: 1 in a grouped cluster study, else 0 (see above)."""
    return 1 if BATCHES and not workflow.local_exec else 0


def _labels_text(kind):
    *first, last = figure_labels(kind)
    return f"{', '.join(first)} and {last}"


FIGURE_CAPTIONS = {
    kind: f"**{title}** ({_labels_text(kind)} in the labels). {description} "
    "Metric definitions: docs/metrics.md in the hnet repository."
    for kind, (title, description) in FIGURE_KINDS.items()
}


def report_outputs():
    """Everything the aggregate step writes (the study's tables and figure directories)."""
    return [f"{OUT}/tables"] + [f"{OUT}/figures/{kind}" for kind in FIGURE_KINDS]


def study_targets():
    targets = [*CELL_METRICS, *TUNING_METRICS, *BATCH_RECORDS, *report_outputs()]
    if TUNING:
        targets.append(SELECTION)
    # a live study's lost store is rebuilt by the sync step too
    if not LIVE or REBUILD_STORE is not None:
        targets.append(f"{OUT}/{SYNC_RECORD}")
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
    cmd = [*hnet, "report", RUNS, "--out", OUT, "--expected", str(grid)]
    cmd += ["--hnet-ref", hnet_reference(config)]
    if TUNING and Path(SELECTION).exists():
        cmd += ["--selection", SELECTION]
    subprocess.run(cmd, check=False)
    if not LIVE:
        sync = [
            *hnet,
            "sync",
            RUNS,
            *([TUNING_RUNS] if Path(TUNING_RUNS).is_dir() else []),
            "--tracking-uri",
            TRACKING_URI,
            "--experiment",
            EXPERIMENT,
        ]
        # a failing store leaves mlflow_pending.json markers; tracking_summary() reports them
        subprocess.run(
            sync, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )


def tracking_summary(failed=False):
    """At the end of a study: one message if the MLflow mirror misses runs (a store that is
    damaged, read-only or went away; cells marked by mlflow_pending.json, unreadable ones
    skipped by the sync step). With tracking.required the study then exits non-zero."""
    dirs = [f"{RUNS}/{c.path}" for c in CELLS] + [
        f"{TUNING_RUNS}/{c.path}" for c in TUNING
    ]
    skipped = {} if LIVE else skipped_runs(f"{OUT}/{SYNC_RECORD}")
    message = mirror_message(STUDY, OUT, dirs, TRACKING_URI, skipped)
    if message is None:
        return
    if REQUIRED:
        message += " (tracking.required is true: the study fails.)"
    print(f"\n{message}\n", file=sys.stderr)
    if REQUIRED and not failed:
        raise WorkflowError(
            "the MLflow mirror is incomplete and tracking.required is true"
        )
