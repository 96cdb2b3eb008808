"""The run table: one row per finished run, read from the metrics.json files under a directory.

The bottom module of the report: tables, figures and missing-cell checks all build on
:class:`Runs` and the group keys and sort order defined here. Groups are benchmark × scenario ×
method × size; ``size`` is ``none`` for methods the size axis does not apply to (the catalog
says which). Runs moved aside by ``--restart`` (``*.old-*``) and checkpoints are not searched.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hnet import metrics
from hnet.errors import HnetError
from hnet.models.sizes import NO_SIZE, buffer_label
from hnet.rundir import SAMPLES, find_metrics
from hnet.study.catalog import is_rehearsal, is_sized

KEYS = ["benchmark", "scenario", "method", "size"]
#: a run's metrics whose definition does not hold in its scenario (metrics.not_applicable): the
#: metric's column is NaN and ``<metric>_na`` holds the reason ('' where it applies)
NA_METRICS = ("fwt",)
NA_SUFFIX = "_na"
RUN_COLUMNS = [
    *KEYS,
    "seed",
    "score",
    *(m.name for m in metrics.METRICS),
    *(m + NA_SUFFIX for m in NA_METRICS),
    "run_dir",
]
REFERENCE = "hnet"  # the method every other one is compared with, pairwise by seed
METHOD_ORDER = (
    "hnet",
    "hnet_tir",
    "hnet_r",
    "finetune",
    "ewc",
    "online_ewc",
    "si",
    "mas",
    "replay",
    "dgr_distill",
    "joint",
    "scratch",
    "hnet_scratch",
)
#: the from-scratch controls: each task learned alone, so their runs are transfer references,
#: not contenders (tables rank them on tables.SCRATCH_RANKED only)
CONTROLS = tuple(metrics.TRANSFER_CONTROLS)


@dataclass
class Runs:
    """The runs table plus each run's score matrix, (hnet) task embeddings and (replay methods)
    sample-grid file, keyed by ``run_dir``, and notes."""

    table: pd.DataFrame
    matrices: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    samples: dict[str, Path] = field(default_factory=dict)


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
    return (3, 0.0, s) if s == NO_SIZE else (2, 0.0, s)


def sort_groups(df: pd.DataFrame, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows ordered benchmark, scenario, method (hnet first), size (official, cr↑), then extra."""

    columns = [df[c].tolist() for c in ("benchmark", "scenario", "method", "size", *extra)]
    keys = [
        (bench, scen, method_key(method), size_key(size), *rest)
        for bench, scen, method, size, *rest in zip(*columns, strict=True)
    ]  # whole columns, not a row object per row: this sorts every run of a study
    order = sorted(range(len(df)), key=keys.__getitem__)
    return df.iloc[order].reset_index(drop=True)


def group_size(m: dict[str, Any]) -> str:
    """A run's size in the report: the hypernetwork size of sized methods, ``buf<N>`` for a
    rehearsal method (its ``buffer.size``: the study grid's buffer axis), else ``none``."""
    if is_sized(m["method"]):
        return str(m.get("size", "official"))
    buffer = ((m.get("config") or {}).get("buffer") or {}).get("size")
    if is_rehearsal(m["method"]) and isinstance(buffer, int):
        return buffer_label(buffer)
    return NO_SIZE


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
    rows, mats, embs, samples, notes = [], {}, {}, {}, []
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
        # the rule of metrics.not_applicable, also for runs written before it was recorded
        na = metrics.not_applicable(str(m["scenario"])) | dict(m.get("not_applicable") or {})
        for name in NA_METRICS:
            row[name + NA_SUFFIX] = str(na.get(name, ""))
            if name in na:
                row[name] = math.nan
        row.update(
            benchmark=str(m["benchmark"]),
            scenario=str(m["scenario"]),
            method=str(m["method"]),
            size=group_size(m),
            seed=int(m["seed"]),
            score=str(m.get("score", "accuracy_percent")),
            run_dir=rel,
        )
        rows.append(row)
        mats[rel] = R
        E = _embeddings(m.get("task_embeddings"))
        if E is not None:
            embs[rel] = E
        if (f.parent / SAMPLES).is_file():
            samples[rel] = f.parent / SAMPLES
    if not rows:
        raise HnetError(
            f"None of the {len(files)} metrics.json files under {root} could be read: "
            + "; ".join(notes)
        )
    df = sort_groups(pd.DataFrame(rows, columns=RUN_COLUMNS), extra=("seed", "run_dir"))
    for control, metric in metrics.TRANSFER_CONTROLS.items():
        df[metric] = _transfer(df, mats, notes, control, metric)
    dup = df.duplicated([*KEYS, "seed"], keep="first")
    if dup.any():
        notes.append(
            f"note: {int(dup.sum())} run(s) repeat a group and seed already seen "
            f"({', '.join(df.loc[dup, 'run_dir'])}); summaries use all runs, paired tests the "
            "first run per seed"
        )
    return Runs(df, mats, notes, embs, samples)


def _embeddings(value: Any) -> np.ndarray | None:
    """``task_embeddings`` as a finite T×d array, or None (absent, ragged or not numbers)."""
    try:
        E = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    ok = value is not None and E.ndim == 2 and E.size > 0 and np.isfinite(E).all()
    return E if ok else None


def _transfer(
    df: pd.DataFrame, mats: dict[str, np.ndarray], notes: list[str], control: str, metric: str
) -> list[float]:
    """``metric`` of every run against the ``control`` run of its benchmark/scenario/seed: the
    plain ``scratch`` network for every run; ``hnet_scratch``, a hypernetwork, for the runs of
    sized methods (the hypernetwork family) of the same size only."""
    by_size = is_sized(control)
    keys = ["benchmark", "scenario", "seed", *(["size"] if by_size else [])]
    runs = df[df["method"] == control].drop_duplicates(keys)
    ref = {tuple(getattr(r, k) for k in keys): mats[r.run_dir] for r in runs.itertuples()}
    cells = {(r.benchmark, r.scenario) for r in runs.itertuples()}
    out, unmatched = [], 0
    for r in df.itertuples():
        # hnet_scratch: hypernetworks only (a plain network's control is scratch), and only where
        # the study ran it (CL1)
        if by_size and (not is_sized(r.method) or (r.benchmark, r.scenario) not in cells):
            out.append(math.nan)
            continue
        s = ref.get(tuple(getattr(r, k) for k in keys))
        if s is None:
            unmatched += 1
            out.append(math.nan)
            continue
        try:
            out.append(metrics.transfer_vs_scratch(mats[r.run_dir], s))
        except ValueError:
            unmatched += 1
            out.append(math.nan)
    match = "benchmark, scenario, seed" + (", size" if by_size else "")
    if not ref:
        if not by_size:  # hnet_scratch is optional: studies without it say nothing
            notes.append(f"skipped {metric}: no {control} runs")
    elif unmatched:
        notes.append(
            f"skipped {metric} for {unmatched} run(s): no matching {control} run "
            f"(same {match} and number of tasks)"
        )
    return out
