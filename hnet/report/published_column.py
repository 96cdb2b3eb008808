"""The "published" column of the summary table: each group's final accuracy beside a published
one, the difference, and what differs in the protocol.

A measured number means little without the number others reported for the same method, and a
difference means little without knowing whether the protocols agree. Groups are matched with
the records of :mod:`hnet.report.published` by (benchmark family, scenario, method): a run on
``split_fmnist`` meets the numbers published for Split MNIST, flagged "data Fashion-MNIST vs
MNIST". Each group's own protocol (data set, tasks, MLP widths, steps or epochs per task, batch
size, buffer) is read from the config its ``metrics.json`` holds; every candidate record is
compared field by field; the one shown keeps the group's buffer (rehearsal methods compare at
equal memory) and has the fewest differences (ties: the order of published.yaml). All
candidates are listed in ``published.csv|md``.

Kept apart from :mod:`hnet.report.tables` so that the summary tables only ask for cells and
notes (:func:`cells`, :func:`notes`), and :func:`attach` adds the columns to the wide table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hnet.report import published
from hnet.report.numbers import fixed, or_dash
from hnet.report.runs import KEYS, sort_groups

#: the summary tables' two extra headings, placed right after the final accuracy
HEADERS = ("published", "Δ vs published")
#: marks a published number whose protocol differs from the measured group's
DIFFERS = "†"
#: what the two columns are, for the summary's introduction
INTRO = (
    "published: a final accuracy published for the same benchmark family, scenario and method "
    "(hnet/report/published.yaml; where it was read is in the note under each table, every "
    f"candidate in published.md); Δ vs published = ours − published; {DIFFERS}: the protocol "
    "differs (the note says how). Under another protocol the difference is context, not a "
    "failed reproduction."
)
MATCH_COLUMNS = [
    *KEYS,
    "n_seeds",
    "measured",
    "measured_std",
    "published",
    "published_std",
    "published_n_runs",
    "diff",
    "protocol_differs",
    "protocol_differences",
    "rank",
    "shown",
    "original_method",
    "published_benchmark",
    "cite",
    "table",
    "source",
    "repository",
    "commit",
    "where",
    "spread",
    "their_protocol",
]
#: columns added to summary_wide.csv after acc_final's
WIDE_COLUMNS = [
    "published_acc_final",
    "published_std",
    "published_n_runs",
    "published_diff",
    "published_protocol_differs",
    "published_protocol",
    "published_source",
]


@dataclass(frozen=True)
class RunProtocol:
    """A group's protocol in the fields a published one states (None: not recorded)."""

    dataset: str
    tasks: int | None
    network: str | None
    hidden: tuple[int, ...] | None  # MLP widths; None for other targets
    epochs_per_task: float | None
    iters_per_task: int | None
    batch_size: int | None
    buffer: int | None

    def training(self) -> str | None:
        if self.epochs_per_task:
            return f"{self.epochs_per_task:g} epochs/task"
        return None if self.iters_per_task is None else f"{self.iters_per_task} steps/task"


def run_protocol(metrics: dict[str, Any]) -> RunProtocol:
    """The protocol of one run from its metrics.json (the resolved config it holds)."""
    cfg = metrics.get("config") or {}
    target, train = cfg.get("target") or {}, cfg.get("train") or {}
    kind = target.get("kind")
    hidden = target.get("hidden") if kind == "mlp" else None
    epochs = train.get("epochs") or 0
    n_tasks = len(metrics.get("acc_matrix") or []) or None
    buffer = cfg.get("buffer") if isinstance(cfg.get("buffer"), dict) else {}
    return RunProtocol(
        dataset=published.dataset(str(metrics["benchmark"])),
        tasks=n_tasks,
        network=None if kind is None else _network(kind, hidden),
        hidden=None if hidden is None else tuple(int(h) for h in hidden),
        epochs_per_task=float(epochs) if epochs else None,
        iters_per_task=None if epochs or train.get("iters") is None else int(train["iters"]),
        batch_size=train.get("batch_size"),
        buffer=buffer.get("size"),
    )


def run_protocols(results_dir: str | Path, runs: pd.DataFrame) -> dict[tuple, RunProtocol]:
    """Each group's protocol, from the first of its runs (the seeds of a group share it) whose
    benchmark belongs to a family with published numbers."""
    families = {r.family for r in published.load()}
    out: dict[tuple, RunProtocol] = {}
    for key, g in runs.groupby(KEYS, sort=False):
        if published.family(key[0]) not in families:
            continue
        try:
            m = json.loads((Path(results_dir) / g["run_dir"].iloc[0] / "metrics.json").read_text())
        except (OSError, ValueError):
            continue  # read before by collect_runs; a file gone since has no protocol
        out[tuple(key)] = run_protocol(m)
    return out


def differences(ours: RunProtocol | None, theirs: published.Protocol, benchmark: str) -> list[str]:
    """What differs between a group's protocol and a published one, "ours vs theirs"."""
    diffs = []
    ds = published.dataset(benchmark)
    if ds != theirs.dataset:
        diffs.append(f"data {ds} vs {theirs.dataset}")
    if ours is None:
        return [*diffs, "our protocol unknown (metrics.json holds no config)"]
    if ours.tasks is not None and ours.tasks != theirs.tasks:
        diffs.append(f"{ours.tasks} vs {theirs.tasks} tasks")
    if theirs.hidden is None:
        diffs.append(f"network {ours.network or '?'} vs {theirs.network}")
    elif ours.hidden != theirs.hidden:
        diffs.append(f"network {ours.network or '?'} vs {_network('mlp', theirs.hidden)}")
    ours_training = ours.training()
    if ours_training != theirs.training():
        diffs.append(f"{ours_training or '?'} vs {theirs.training()}")
    if None not in (ours.batch_size, theirs.batch_size) and ours.batch_size != theirs.batch_size:
        diffs.append(f"batch {ours.batch_size} vs {theirs.batch_size}")
    if ours.buffer != theirs.buffer:
        diffs.append(f"buffer {_buffer(ours.buffer)} vs {_buffer(theirs.buffer)}")
    return diffs


def compare(
    summary: pd.DataFrame,
    protocols: dict[tuple, RunProtocol],
    records: Iterable[published.Published] | None = None,
) -> pd.DataFrame:
    """Every (group, published record) pair with the same family, scenario and method: the
    measured and published acc_final, their difference (measured − published), the protocol
    differences and the rank (0: the one the summary shows; records with the group's buffer
    first, then the fewest differences, then the order of published.yaml)."""
    records = list(published.load() if records is None else records)
    acc = summary[summary["metric"] == "acc_final"]
    rows = []
    for r in acc.itertuples(index=False):
        key = (r.benchmark, r.scenario, r.method, r.size)
        fam = published.family(r.benchmark)
        found = [
            p
            for p in records
            if p.family == fam and p.scenario == r.scenario and p.method == r.method
        ]
        ours = protocols.get(key)
        scored = [
            (_other_buffer(ours, p), differences(ours, p.protocol, r.benchmark), i, p)
            for i, p in enumerate(found)
        ]
        scored.sort(key=lambda s: (s[0], len(s[1]), s[2]))
        for rank, (_, diffs, _, p) in enumerate(scored):
            rows.append(
                dict(zip(KEYS, key, strict=True))
                | {
                    "n_seeds": r.n_seeds,
                    "measured": r.mean,
                    "measured_std": r.std,
                    "published": p.value,
                    "published_std": math.nan if p.std is None else p.std,
                    "published_n_runs": p.n_runs,
                    "diff": r.mean - p.value,
                    "protocol_differs": bool(diffs),
                    "protocol_differences": "; ".join(diffs),
                    "rank": rank,
                    "shown": rank == 0,
                    "original_method": p.original_method,
                    "published_benchmark": p.benchmark,
                    "cite": p.cite,
                    "table": p.table,
                    "source": p.source,
                    "repository": p.repository,
                    "commit": p.commit,
                    "where": p.where,
                    "spread": p.spread or "",
                    "their_protocol": _describe(p.protocol),
                }
            )
    out = pd.DataFrame(rows, columns=MATCH_COLUMNS)
    out["published_n_runs"] = out["published_n_runs"].astype("Int64")  # "not stated": empty
    return sort_groups(out, extra=("rank",)) if len(out) else out


def _other_buffer(ours: RunProtocol | None, p: published.Published) -> bool:
    """Does the record keep another number of stored inputs than the group? Ranked first:
    rehearsal methods are compared at equal memory or not at all."""
    return ours is not None and ours.buffer != p.protocol.buffer


def shown(matches: pd.DataFrame) -> dict[tuple, Any]:
    """Group key → the row of the published number the summary shows."""
    return {tuple(getattr(r, k) for k in KEYS): r for r in matches[matches["shown"]].itertuples()}


def attach(wide: pd.DataFrame, matches: pd.DataFrame) -> pd.DataFrame:
    """summary_wide with WIDE_COLUMNS after ``acc_final_best`` (NaN / '' without a match)."""
    best = shown(matches)
    values: dict[str, list[Any]] = {c: [] for c in WIDE_COLUMNS}
    for r in wide.itertuples(index=False):
        m = best.get(tuple(getattr(r, k) for k in KEYS))
        values["published_acc_final"].append(m.published if m else math.nan)
        values["published_std"].append(m.published_std if m else math.nan)
        values["published_n_runs"].append(m.published_n_runs if m else None)
        values["published_diff"].append(m.diff if m else math.nan)
        values["published_protocol_differs"].append(bool(m.protocol_differs) if m else math.nan)
        values["published_protocol"].append(m.protocol_differences if m else "")
        values["published_source"].append(f"{m.cite}: {m.where}" if m else "")
    out = wide.copy()
    at = list(out.columns).index("acc_final_best") + 1
    values["published_n_runs"] = pd.array(values["published_n_runs"], dtype="Int64")
    for offset, c in enumerate(WIDE_COLUMNS):
        out.insert(at + offset, c, values[c])
    return out


def has_any(matches: pd.DataFrame | None, bench: str, scen: str) -> bool:
    """Does this benchmark × scenario table get the published columns?"""
    if matches is None or matches.empty:
        return False
    return bool(((matches["benchmark"] == bench) & (matches["scenario"] == scen)).any())


def cells(
    matches: pd.DataFrame, key: tuple, pm: str = " ± ", mark: str = DIFFERS
) -> tuple[str, str]:
    """The group's two cells: "value ± spread [n]" (``mark`` if the protocol differs) and the
    signed difference; "–" for both without a published number. [n] numbers the sources in the
    table's notes (:func:`notes`)."""
    bench, scen = key[0], key[1]
    m = shown(matches).get(tuple(key))
    if m is None:
        return "–", "–"
    ref = _source_numbers(matches, bench, scen)[m.table]
    text = fixed(m.published) + (
        f"{pm}{fixed(m.published_std)}" if np.isfinite(m.published_std) else ""
    )
    text += f" [{ref}]" + (mark if m.protocol_differs else "")
    diff = or_dash(m.diff, sign=True)
    return text, diff


def notes(matches: pd.DataFrame, bench: str, scen: str, mark: str = DIFFERS) -> list[str]:
    """One line per source shown in a benchmark × scenario table: the number, where it was read,
    runs, what ± is, and the protocol differences of its rows."""
    best = [m for k, m in shown(matches).items() if k[0] == bench and k[1] == scen]
    lines = []
    for table, ref in _source_numbers(matches, bench, scen).items():
        rows = [m for m in best if m.table == table]
        diffs: list[str] = []
        for m in rows:
            diffs += [d for d in m.protocol_differences.split("; ") if d and d not in diffs]
        first = rows[0]
        runs = (
            "runs not stated"
            if pd.isna(first.published_n_runs)
            else f"{int(first.published_n_runs)} run(s)"
        )
        spread = f"; ± is {first.spread}" if first.spread else ""
        proto = (
            f" {mark} protocol differs (ours vs theirs): {'; '.join(diffs)}."
            if diffs
            else " Same protocol."
        )
        lines.append(
            f"[{ref}] {first.cite}, {first.repository}: {first.where} ({runs}{spread}).{proto}"
        )
    return lines


def published_markdown(matches: pd.DataFrame) -> str:
    """published.md: every published number that matches a group, the shown one first."""
    lines = [
        "# Published results beside ours",
        "",
        "Final accuracy (acc_final, %) of each group beside every published number for the same "
        "benchmark family (Split / Permuted MNIST, also for their Fashion-MNIST and digits "
        "versions), scenario and method, from hnet/report/published.yaml. diff = ours − "
        "published. The summary shows rank 0: a number at the group's buffer where there is "
        "one, then the one whose protocol differs least, then the file's order. Protocol "
        "differences are listed as ours vs theirs.",
    ]
    if matches.empty:
        return "\n".join([*lines, "", "No group has a published number."]) + "\n"
    for (bench, scen), g in matches.groupby(["benchmark", "scenario"], sort=False):
        lines += [
            "",
            f"## {bench} / {scen}",
            "",
            "| method | size | ours | published | diff | rank | source | protocol differences |",
            "|---|---|---:|---:|---:|---:|---|---|",
        ]
        for r in g.itertuples():
            pub = fixed(r.published) + (
                f" ± {fixed(r.published_std)}" if np.isfinite(r.published_std) else ""
            )
            ours, diff = or_dash(r.measured), or_dash(r.diff, sign=True)
            source = f"{_md(r.cite)}: {_md(r.original_method)}, {_md(r.where)}"
            differ = _md(r.protocol_differences) or "none"
            lines.append(
                f"| {r.method} | {r.size} | {ours} | {pub} | {diff} | {r.rank} | {source} "
                f"| {differ} |"
            )
    return "\n".join(lines) + "\n"


def _source_numbers(matches: pd.DataFrame, bench: str, scen: str) -> dict[str, int]:
    """Table id → its footnote number in one benchmark × scenario table (order of appearance)."""
    g = matches[(matches["benchmark"] == bench) & (matches["scenario"] == scen) & matches["shown"]]
    return {t: i + 1 for i, t in enumerate(dict.fromkeys(g["table"]))}


def _network(kind: str, hidden: Iterable[int] | None) -> str:
    return f"MLP {'-'.join(map(str, hidden))}" if kind == "mlp" and hidden else str(kind)


def _buffer(size: int | None) -> str:
    return "none" if size is None else str(size)


def _describe(p: published.Protocol) -> str:
    parts = [
        p.dataset,
        f"{p.tasks} tasks",
        p.network,
        p.training(),
        f"batch {p.batch_size}" if p.batch_size else "batch ?",
        p.optimizer,
        f"buffer {_buffer(p.buffer)}",
    ]
    return "; ".join(parts) + (f" ({p.notes})" if p.notes else "")


def _md(v: Any) -> str:
    return str(v).replace("|", "\\|")
