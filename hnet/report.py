"""``hnet report RESULTS_DIR``: tables and figures from the ``metrics.json`` files of many runs.

Everything is a pure function of the files under RESULTS_DIR (sorted walk, no clocks, no
randomness), so running it twice writes byte-identical tables::

    OUT/tables/runs.csv            one row per run (+ transfer_vs_scratch joined from scratch runs)
    OUT/tables/summary.csv         mean / std / 95 % CI (Student t) per group × metric (long form)
    OUT/tables/summary.md|.tex     "mean ± std" per group, best value per benchmark×scenario bold
    OUT/tables/paired_vs_hnet.csv|.md   paired differences (method − hnet) of acc_final by seed
    OUT/figures/*.png|.svg         acc_final, forgetting, acc_vs_compression, matrix heatmaps

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
    """The runs table plus each run's score matrix (keyed by ``run_dir``) and notes."""

    table: pd.DataFrame
    matrices: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)


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
    rows, mats, notes = [], {}, []
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
            run_dir=rel,
        )
        rows.append(row)
        mats[rel] = R
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
    return Runs(df, mats, notes)


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
    out: Path
    written: list[Path]
    notes: list[str]


def make_report(
    results_dir: str | Path, out: str | Path | None = None, hnet_ref: str | None = None
) -> Report:
    """Write tables and figures for all runs under ``results_dir`` into ``out`` (default: same).

    ``hnet_ref``: the hnet size the paired comparison uses (default: the only one, or the one
    with the highest mean acc_final per benchmark × scenario).
    """
    from hnet import report_figures, report_tables

    runs = collect_runs(results_dir)
    out = Path(out) if out is not None else Path(results_dir)
    tables, figures = out / "tables", out / "figures"
    tables.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    notes, written = list(runs.notes), []

    def put(name: str, text: str) -> None:
        (tables / name).write_text(text)
        written.append(tables / name)

    put("runs.csv", runs.table.to_csv(index=False))
    summary = report_tables.summarize(runs.table)
    put("summary.csv", summary.to_csv(index=False))
    put("summary.md", report_tables.summary_markdown(summary))
    put("summary.tex", report_tables.summary_latex(summary))
    paired, paired_notes = report_tables.paired_vs_hnet(runs.table, summary, hnet_ref)
    notes += paired_notes
    put("paired_vs_hnet.csv", paired.to_csv(index=False))
    put("paired_vs_hnet.md", report_tables.paired_markdown(paired))
    fig_files, fig_notes = report_figures.all_figures(runs, summary, figures)
    written += fig_files
    notes += fig_notes
    return Report(out, written, notes)
