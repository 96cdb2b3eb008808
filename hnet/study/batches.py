"""Grouped submission (``cluster.cells_per_job: N``): which training jobs share one cluster job.

A study of the paper is thousands of cells, most of them minutes long; one ``sbatch`` per cell
floods the scheduler and meets the sites' caps on queued jobs. With ``cells_per_job: N`` the
training jobs are cut into *batches* of at most N cells, and the Snakefile makes each batch one
Snakemake group job, so one SLURM job trains its cells one after another. Every cell stays its
own Snakemake job, with its own run directory, checkpoint, log and MLflow run; a rerun after a
killed batch trains only the cells of it that did not finish.

Batches never mix benchmark × scenario × method × size (the cell's group, plus the stage: final
or tuning): cells of one batch cost about the same, so the batch's time limit (the sum of its
cells') is not driven by one odd cell, and a batch's membership does not change when the study
gains methods, benchmarks or sizes (only when its own seeds or sweep points change). Within a
group, cells are taken in order (sweep point, then seed); a pack of seeds (``pack_seeds``) is
one unit that counts as its seeds and is never split; a pack larger than N is a batch alone.

Torch-free: the Snakefile imports it while it parses.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from hnet.study.grid import Cell

#: the wildcard pattern of a batch name (``Snakefile``'s ``wildcard_constraints``)
NAME_PATTERN = r"[A-Za-z0-9_.=-]+"
RECORDS = "batches"  # results/<study>/batches/<name>.json: which cells a cluster job trained


@dataclass(frozen=True)
class Batch:
    """One cluster job's cells: ``units`` are lone cells ``(cell,)`` or packs of seeds."""

    name: str
    units: tuple[tuple[Cell, ...], ...]

    @property
    def cells(self) -> list[Cell]:
        return [c for unit in self.units for c in unit]


def cells_per_job(config: dict[str, Any]) -> int:
    """``cluster.cells_per_job`` (1 = no grouping: one cluster job per training job)."""
    return int((config.get("cluster") or {}).get("cells_per_job", 1))


def _stage(cell: Cell) -> str:
    return "tuning" if cell.point else "final"


def _name(cell: Cell, index: int) -> str:
    """``<stage>-<benchmark>-<scenario>-<method>-<size>-<index>``: a Snakemake group name, a
    file name and a wildcard value at once (letters, digits, ``_ . = -`` only)."""
    raw = f"{_stage(cell)}-{cell.benchmark}-{cell.scenario}-{cell.method}-{cell.size}-{index}"
    return "".join(ch if ch.isalnum() or ch in "_.=-" else "_" for ch in raw)


def batches(
    config: dict[str, Any], cells: list[Cell], tuning: list[Cell], packs: list[list[Cell]]
) -> list[Batch]:
    """The study's batches ([] when ``cells_per_job`` is 1). ``cells``: the final cells,
    ``tuning``: the tuning cells, ``packs``: the packs of seeds (:func:`hnet.study.packs.packs`),
    whose cells are among ``cells``. Every training job is in exactly one batch."""
    n = cells_per_job(config)
    if n < 2:
        return []
    packed = {c: tuple(p) for p in packs for c in p}
    units: list[tuple[Cell, ...]] = []
    seen: set[tuple[Cell, ...]] = set()
    for cell in sorted([*cells, *tuning], key=_order):
        unit = packed.get(cell, (cell,))
        if unit not in seen:
            seen.add(unit)
            units.append(unit)
    out: list[Batch] = []
    for _, group in itertools.groupby(units, key=lambda u: (_stage(u[0]), u[0].group)):
        current: list[tuple[Cell, ...]] = []
        index = 0
        for unit in group:
            if current and sum(map(len, current)) + len(unit) > n:
                out.append(Batch(_name(current[0][0], index), tuple(current)))
                current, index = [], index + 1
            current.append(unit)
        out.append(Batch(_name(current[0][0], index), tuple(current)))
    return out


def _order(cell: Cell) -> tuple:
    return (_stage(cell), cell.group, cell.point, cell.seed)


def by_cell(found: list[Batch]) -> dict[Cell, str]:
    """cell → the name of its batch."""
    return {c: b.name for b in found for c in b.cells}


def summary(found: list[Batch], n_jobs: int) -> str:
    """One line for the parse-time log: how many cluster jobs the training jobs become."""
    return (
        f"hnet: cluster.cells_per_job: {n_jobs} training jobs in {len(found)} batches "
        f"(one cluster job each while all of a batch's cells still have to run)"
    )
