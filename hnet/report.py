"""``hnet report RESULTS_DIR``: tables and figures from the ``metrics.json`` files of many runs.

Everything is a pure function of the files under RESULTS_DIR (and the grid file), read in a
sorted walk with no clocks or randomness, so running it twice writes byte-identical tables. The
layout is fixed (hnet.report_layout, imported by the study Snakefile)::

    OUT/tables/runs.csv            one row per run (+ transfer_vs_scratch joined from scratch runs)
    OUT/tables/summary.csv         mean / std / 95 % CI (Student t) per group × metric (long form)
    OUT/tables/summary_wide.csv    the same, one row per group, <metric>_mean|std|ci95|best
    OUT/tables/summary.md|.tex     "mean ± std" per group, best value per benchmark×scenario bold
    OUT/tables/paired_vs_hnet.csv|.md   paired differences (method − hnet) of acc_final by seed
    OUT/tables/missing.csv|.md     expected cells (--expected grid) without a result, and why
    OUT/figures/<kind>/<benchmark>__<scenario>.png|.svg   one directory per FIGURE_KINDS entry

Groups are benchmark × scenario × method × size; ``size`` is ``-`` for non-hnet methods (the
hypernetwork size means nothing for them). Directories named ``*.old-*`` (runs moved aside by
``--restart``) and ``state`` (checkpoints) are not searched.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hnet import metrics
from hnet.errors import HnetError

RUN_COLUMNS = [
    "benchmark",
    "scenario",
    "method",
    "size",
    "seed",
    "score",
    "acc_final",
    "acc_during",
    "bwt",
    "fwt",
    "forgetting",
    "transfer_vs_scratch",
    "task_inference_final",
    "compression_ratio",
    "n_params_hnet",
    "n_params_target",
    "train_seconds",
    "run_dir",
]
KEYS = ["benchmark", "scenario", "method", "size"]
METHOD_ORDER = ("hnet", "finetune", "ewc", "online_ewc", "si", "mas", "replay", "joint", "scratch")


@dataclass
class Runs:
    """The runs table plus each run's score matrix and (hnet) task embeddings, keyed by
    ``run_dir``, and notes."""

    table: pd.DataFrame
    matrices: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)


def method_key(m: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), m)


def size_key(s: str) -> tuple[int, float, str]:
    if s == "official":
        return (0, 0.0, s)
    if s.startswith("cr"):
        try:
            return (1, float(s[2:]), s)
        except ValueError:
            pass
    return (3, 0.0, s) if s == "-" else (2, 0.0, s)


def sort_groups(df: pd.DataFrame, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows ordered benchmark, scenario, method (hnet first), size (official, cr↑), then extra."""

    def key(i: int) -> tuple:
        r = df.iloc[i]
        return (
            r["benchmark"],
            r["scenario"],
            method_key(r["method"]),
            size_key(r["size"]),
            *(r[c] for c in extra),
        )

    order = sorted(range(len(df)), key=key)
    return df.iloc[order].reset_index(drop=True)


def find_metrics(root: Path) -> list[Path]:
    """Every metrics.json under ``root``, sorted, skipping ``*.old-*`` and ``state`` dirs."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "state" and not fnmatch(d, "*.old-*"))
        if "metrics.json" in filenames:
            found.append(Path(dirpath) / "metrics.json")
    return sorted(found)


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def collect_runs(results_dir: str | Path) -> Runs:
    """One row per run under ``results_dir``; raises HnetError when there is none."""
    root = Path(results_dir)
    files = find_metrics(root) if root.is_dir() else []
    if not files:
        raise HnetError(
            f"No metrics.json found under {root} (searched recursively, skipping '*.old-*' and "
            f"'state' directories){'' if root.is_dir() else ': the directory does not exist'}. "
            "Point `hnet report` at the directory that holds finished run directories (each "
            "written by `hnet train --out DIR`), or run the jobs first."
        )
    rows, mats, embs, notes = [], {}, {}, []
    for f in files:
        rel = f.parent.relative_to(root).as_posix() or "."
        try:
            m = json.loads(f.read_text())
            R = np.asarray(m["acc_matrix"], dtype=float)
            missing = [k for k in ("benchmark", "scenario", "method", "seed") if k not in m]
            if missing or R.ndim != 2:
                raise ValueError(f"missing {', '.join(missing) or 'a 2-D acc_matrix'}")
        except (OSError, ValueError, KeyError, TypeError) as e:
            notes.append(f"skipped {rel}/metrics.json: unreadable ({e})")
            continue
        row = {c: _num(m.get(c)) for c in RUN_COLUMNS}
        row.update(
            benchmark=str(m["benchmark"]),
            scenario=str(m["scenario"]),
            method=str(m["method"]),
            size=str(m.get("size", "official")) if m["method"] == "hnet" else "-",
            seed=int(m["seed"]),
            score=str(m.get("score", "accuracy_percent")),
            run_dir=rel,
        )
        rows.append(row)
        mats[rel] = R
        E = _embeddings(m.get("task_embeddings"))
        if E is not None:
            embs[rel] = E
    if not rows:
        raise HnetError(
            f"None of the {len(files)} metrics.json files under {root} could be read: "
            + "; ".join(notes)
        )
    df = sort_groups(pd.DataFrame(rows, columns=RUN_COLUMNS), extra=("seed", "run_dir"))
    df["transfer_vs_scratch"] = _transfer(df, mats, notes)
    dup = df.duplicated([*KEYS, "seed"], keep="first")
    if dup.any():
        notes.append(
            f"note: {int(dup.sum())} run(s) repeat a group and seed already seen "
            f"({', '.join(df.loc[dup, 'run_dir'])}); summaries use all runs, paired tests the "
            "first run per seed"
        )
    return Runs(df, mats, notes, embs)


def _embeddings(value: Any) -> np.ndarray | None:
    """``task_embeddings`` as a finite T×d array, or None (absent, ragged or not numbers)."""
    try:
        E = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    ok = value is not None and E.ndim == 2 and E.size > 0 and np.isfinite(E).all()
    return E if ok else None


def _transfer(df: pd.DataFrame, mats: dict[str, np.ndarray], notes: list[str]) -> list[float]:
    """transfer_vs_scratch of every run against the scratch run of its benchmark/scenario/seed."""
    scratch = df[df["method"] == "scratch"].drop_duplicates(["benchmark", "scenario", "seed"])
    ref = {(r.benchmark, r.scenario, r.seed): mats[r.run_dir] for r in scratch.itertuples()}
    out, unmatched = [], 0
    for r in df.itertuples():
        s = ref.get((r.benchmark, r.scenario, r.seed))
        if s is None:
            unmatched += 1
            out.append(math.nan)
            continue
        try:
            out.append(metrics.transfer_vs_scratch(mats[r.run_dir], s))
        except ValueError:
            unmatched += 1
            out.append(math.nan)
    if not ref:
        notes.append("skipped transfer_vs_scratch: no scratch runs")
    elif unmatched:
        notes.append(
            f"skipped transfer_vs_scratch for {unmatched} run(s): no matching scratch run "
            "(same benchmark, scenario, seed and number of tasks)"
        )
    return out


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
        from hnet.report_missing import STATUSES

        counts = self.missing["status"].value_counts()
        why = ", ".join(f"{counts[s]} {s}" for s in STATUSES if s in counts)
        return (
            f"missing {n} of {self.n_expected} expected cells ({why}); "
            f"see {self.out / 'tables' / 'missing.md'}"
        )


def make_report(
    results_dir: str | Path,
    out: str | Path | None = None,
    hnet_ref: str | None = None,
    expected: str | Path | None = None,
) -> Report:
    """Write tables and figures for all runs under ``results_dir`` into ``out`` (default: same).

    ``hnet_ref``: the hnet size the paired comparison uses (default: the only one, or the one
    with the highest mean acc_final per benchmark × scenario). ``expected``: the study's grid
    file; expected cells without a result are listed in tables/missing.csv|md with the reason.
    The layout is fixed (hnet.report_layout); see the module docstring.
    """
    from hnet import report_figures, report_missing, report_tables

    grid = report_missing.load_grid(expected) if expected is not None else None
    n_expected = None if grid is None else len(grid.cells)
    out = Path(out) if out is not None else Path(results_dir)
    tables = out / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def put(name: str, text: str) -> None:
        (tables / name).write_text(text)
        written.append(tables / name)

    def put_missing(runs_table: pd.DataFrame | None) -> tuple[pd.DataFrame | None, list[str]]:
        """missing.csv|md are always written (header only / 'no grid' without ``expected``)."""
        if grid is None:
            missing, notes = None, []
        else:
            missing, notes = report_missing.missing_cells(grid, results_dir, runs_table)
        empty = pd.DataFrame(columns=report_missing.MISSING_COLUMNS)
        put("missing.csv", (empty if missing is None else missing).to_csv(index=False))
        put("missing.md", report_tables.missing_markdown(missing, n_expected))
        return missing, notes

    try:
        runs = collect_runs(results_dir)
    except HnetError as e:
        if grid is None:
            raise
        put_missing(None)
        raise HnetError(
            f"{e} ({tables / 'missing.md'} lists the {n_expected} expected cells and why each "
            "has no result.)"
        ) from e
    missing, notes = put_missing(runs.table)
    notes = runs.notes + notes

    put("runs.csv", runs.table.to_csv(index=False))
    summary = report_tables.summarize(runs.table)
    put("summary.csv", summary.to_csv(index=False))
    put("summary_wide.csv", report_tables.summary_wide(summary).to_csv(index=False))
    head = None
    if grid is not None and missing is not None:
        head = (
            f"{n_expected - len(missing)} of {n_expected} expected cells finished"
            + (f" (study {grid.study})" if grid.study else "")
            + ("; the missing ones are listed in missing.md." if len(missing) else ".")
        )
    put("summary.md", report_tables.summary_markdown(summary, head))
    put("summary.tex", report_tables.summary_latex(summary))
    paired, paired_notes = report_tables.paired_vs_hnet(runs.table, summary, hnet_ref)
    notes += paired_notes
    put("paired_vs_hnet.csv", paired.to_csv(index=False))
    put("paired_vs_hnet.md", report_tables.paired_markdown(paired))
    fig_files, fig_notes = report_figures.all_figures(runs, summary, out)
    written += fig_files
    notes += fig_notes
    return Report(out, written, notes, n_expected, missing)
