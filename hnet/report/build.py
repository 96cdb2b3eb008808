"""``hnet report RESULTS_DIR``: write the tables and figures of all runs under a directory.

Everything is a pure function of the files under RESULTS_DIR (and the grid file), read in a
sorted walk with no clocks or randomness, so running it twice writes byte-identical tables. The
layout is fixed (:mod:`hnet.report.layout`, imported by the study Snakefile)::

    OUT/tables/runs.csv            one row per run (+ transfer_vs_scratch, transfer_vs_hnet_scratch
                                   joined from the scratch and hnet_scratch control runs)
    OUT/tables/summary.csv         mean / std / 95 % CI (Student t) per group × metric (long form)
    OUT/tables/summary_wide.csv    the same, one row per group, <metric>_mean|std|ci95|best
    OUT/tables/summary.md|.tex     "mean ± std" per group, best value per benchmark×scenario bold
    OUT/tables/paired_vs_hnet.csv|.md   paired differences (method − hnet) of acc_final by seed
    OUT/tables/published.csv|.md   published results beside each group's final accuracy, the
                                   difference and the protocol differences (published.yaml)
    OUT/tables/missing.csv|.md     expected cells (--expected grid) without a result, and why
    OUT/tables/selected.csv|.md    the values a study's tuning stage selected (--selection), and
                                   the rule; OUT/figures/sensitivity/ draws the curves behind them
    OUT/tables/state.csv|.md|.rst  the study's state per method (hnet status's classification)
                                   and the compute hours the finished cells took
    OUT/figures/<kind>/<benchmark>__<scenario>.png|.svg   one directory per FIGURE_KINDS entry
    OUT/figures/samples/<benchmark>__<scenario>__<method>.png|.svg   per replay method
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hnet.errors import HnetError
from hnet.report import figures, published_column, tables
from hnet.report import missing as missing_mod
from hnet.report import state as state_mod
from hnet.report.runs import collect_runs
from hnet.report.selection import load_selection, selected_markdown, selected_table


@dataclass
class Report:
    """What ``make_report`` wrote; ``n_expected`` / ``missing`` only with a grid file."""

    out: Path
    written: list[Path]
    notes: list[str]
    n_expected: int | None = None
    missing: pd.DataFrame | None = None

    def missing_summary(self) -> str:
        """One line for the CLI: how many expected cells are missing, and why."""
        if self.n_expected is None or self.missing is None:
            return "no grid given (--expected): missing cells not checked"
        n = len(self.missing)
        if n == 0:
            return f"all {self.n_expected} expected cells finished"
        counts = self.missing["status"].value_counts()
        why = ", ".join(f"{counts[s]} {s}" for s in missing_mod.STATUSES if s in counts)
        return (
            f"missing {n} of {self.n_expected} expected cells ({why}); "
            f"see {self.out / 'tables' / 'missing.md'}"
        )


def make_report(
    results_dir: str | Path,
    out: str | Path | None = None,
    hnet_ref: str | None = None,
    expected: str | Path | None = None,
    selection: str | Path | None = None,
) -> Report:
    """Write tables and figures for all runs under ``results_dir`` into ``out`` (default: same).

    ``hnet_ref``: the hnet size the paired comparison uses (default: ``official``, else the
    first size in report order; never the best-scoring one). ``expected``: the study's grid
    file; expected cells without a result are listed in tables/missing.csv|md with the reason.
    ``selection``: a study's tuning/selection.json, for tables/selected.csv|md and the
    sensitivity figures. The layout is fixed (hnet.report.layout); see the module docstring.
    """
    grid = missing_mod.load_grid(expected) if expected is not None else None
    chosen = load_selection(selection) if selection is not None else None
    n_expected = None if grid is None else len(grid.cells)
    out = Path(out) if out is not None else Path(results_dir)
    tables_out = TableWriter(out / "tables")
    try:
        runs = collect_runs(results_dir)
    except HnetError as e:
        if grid is None:
            raise
        write_missing(tables_out, grid, results_dir, None)
        write_state(tables_out, expected)
        raise HnetError(
            f"{e} ({tables_out.dir / 'missing.md'} lists the {n_expected} expected cells and "
            "why each has no result.)"
        ) from e
    missing, notes = write_missing(tables_out, grid, results_dir, runs.table)
    protocols = published_column.run_protocols(results_dir, runs.table)
    summary, table_notes = write_tables(tables_out, runs, grid, missing, hnet_ref, protocols)
    tables_out.put("selected.csv", selected_table(chosen).to_csv(index=False))
    tables_out.put("selected.md", selected_markdown(chosen))
    write_state(tables_out, expected)
    fig_files, fig_notes = figures.all_figures(runs, summary, out, chosen)
    notes = runs.notes + notes + table_notes + fig_notes
    return Report(out, tables_out.written + fig_files, notes, n_expected, missing)


class TableWriter:
    """Writes named files into the tables directory and remembers what it wrote."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.written: list[Path] = []

    def put(self, name: str, text: str) -> None:
        (self.dir / name).write_text(text)
        self.written.append(self.dir / name)


def write_missing(
    w: TableWriter, grid, results_dir: str | Path, runs_table: pd.DataFrame | None
) -> tuple[pd.DataFrame | None, list[str]]:
    """missing.csv|md are always written (header only / 'no grid' without a grid file)."""
    if grid is None:
        missing, notes = None, []
    else:
        missing, notes = missing_mod.missing_cells(grid, results_dir, runs_table)
    empty = pd.DataFrame(columns=missing_mod.MISSING_COLUMNS)
    w.put("missing.csv", (empty if missing is None else missing).to_csv(index=False))
    n_expected = None if grid is None else len(grid.cells)
    w.put("missing.md", tables.missing_markdown(missing, n_expected))
    return missing, notes


def write_tables(
    w: TableWriter,
    runs,
    grid,
    missing: pd.DataFrame | None,
    hnet_ref: str | None,
    protocols: dict | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """The run, summary, published and paired tables; returns the summary (the figures draw
    from it). ``protocols``: each group's protocol (published_column.run_protocols)."""
    w.put("runs.csv", runs.table.to_csv(index=False))
    summary = tables.summarize(runs.table)
    w.put("summary.csv", summary.to_csv(index=False))
    matches = published_column.compare(summary, protocols or {})
    wide = published_column.attach(tables.summary_wide(summary), matches)
    w.put("summary_wide.csv", wide.to_csv(index=False))
    w.put("published.csv", matches.to_csv(index=False))
    w.put("published.md", published_column.published_markdown(matches))
    head = None
    if grid is not None and missing is not None:
        n_expected = len(grid.cells)
        head = (
            f"{n_expected - len(missing)} of {n_expected} expected cells finished"
            + (f" (study {grid.study})" if grid.study else "")
            + ("; the missing ones are listed in missing.md." if len(missing) else ".")
        )
    w.put("summary.md", tables.summary_markdown(summary, head, matches))
    w.put("summary.tex", tables.summary_latex(summary, matches))
    paired, notes = tables.paired_vs_hnet(runs.table, summary, hnet_ref)
    w.put("paired_vs_hnet.csv", paired.to_csv(index=False))
    w.put("paired_vs_hnet.md", tables.paired_markdown(paired))
    return summary, notes


def write_state(w: TableWriter, grid: str | Path | None) -> None:
    """state.csv|md|rst: the study's state per method and the compute it took (only with a
    grid file; without one, what could not be checked)."""
    if grid is None:
        files = {
            "state.csv": ",".join(state_mod.COLUMNS) + "\n",
            "state.md": "# State of the study\n\nNo grid file was given (`hnet report "
            "--expected GRID_JSON`), so the study's state could not be checked.\n",
            "state.rst": "No grid file was given, so the study's state could not be checked.\n",
        }
    else:
        files = state_mod.state_files(grid)
    for name, text in files.items():
        w.put(name, text)
