"""The tuning stage in the report: the selection file read into tables.

A study with sweeps writes ``tuning/selection.json`` (:mod:`hnet.study.select`): the selection
rule, the selected values per benchmark × scenario × method × size and every candidate's
per-seed validation scores. ``hnet report --selection FILE`` turns it into
``tables/selected.csv|md`` (what was chosen, by which rule, against which alternatives) and the
``sensitivity`` figures (:mod:`hnet.report.sensitivity`). Without a selection file both tables
are still written, saying that there was no tuning stage.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from hnet.errors import HnetError
from hnet.report.runs import KEYS, sort_groups

SELECTED_COLUMNS = [
    *KEYS,
    "key",
    "selected",
    "point",
    "metric",
    "aggregate",
    "score",
    "n_seeds",
    "n_values",
]


def load_selection(path: str | Path) -> dict[str, Any]:
    """A selection file, checked for the parts the report reads."""
    path = Path(path)
    try:
        sel = json.loads(path.read_text())
        for g in sel["groups"]:
            [g[k] for k in (*KEYS, "selected", "selected_dir", "candidates")]
        sel["rule"]["metric"], sel["rule"]["text"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise HnetError(
            f"--selection {path}: not a readable selection file ({type(e).__name__}: {e}); it is "
            "written by a study with sweeps as results/<study>/tuning/selection.json."
        ) from e
    return sel


def _text(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def selected_table(selection: dict[str, Any] | None) -> pd.DataFrame:
    """One row per group and swept key: the selected value and its aggregated score."""
    if selection is None:
        return pd.DataFrame(columns=SELECTED_COLUMNS)
    rule = selection["rule"]
    rows = []
    for g in selection["groups"]:
        best = next(c for c in g["candidates"] if c["point_dir"] == g["selected_dir"])
        for key, value in g["selected"].items():
            rows.append(
                {k: g[k] for k in KEYS}
                | {
                    "key": key,
                    "selected": _text(value),
                    "point": g["selected_dir"],
                    "metric": rule["metric"],
                    "aggregate": rule["aggregate"],
                    "score": best["value"],
                    "n_seeds": len(best["seeds"]),
                    "n_values": len(g["candidates"]),
                }
            )
    if not rows:
        return pd.DataFrame(columns=SELECTED_COLUMNS)
    return sort_groups(pd.DataFrame(rows, columns=SELECTED_COLUMNS), extra=("key",))


def selected_markdown(selection: dict[str, Any] | None) -> str:
    lines = ["# Selected hyperparameters", ""]
    if selection is None:
        lines.append(
            "No tuning stage: this report was made without a selection file (a study without "
            "sweeps, or `hnet report` without --selection)."
        )
        return "\n".join(lines) + "\n"
    rule = selection["rule"]
    lines += [
        f"Selection rule: {rule['text']}",
        "",
        "Each row lists every swept value with its score (the aggregate over tuning seeds); the "
        "selected one is in bold. The final cells of that benchmark × scenario × method × size "
        "trained with it; their test results are in summary.md.",
    ]
    groups = selected_groups(selection)
    for (bench, scen), gs in groups.items():
        lines += ["", f"## {bench} / {scen}", "", "| method | size | selected | candidates |"]
        lines.append("|---|---|---|---|")
        for g in gs:
            cands = []
            for c in g["candidates"]:
                v = c["value"]
                text = f"{c['point_dir']}: {'–' if v is None else f'{v:.2f}'}"
                cands.append(f"**{text}**" if c["point_dir"] == g["selected_dir"] else text)
            lines.append(
                f"| {g['method']} | {g['size']} | {g['selected_dir']} | {' · '.join(cands)} |"
            )
    return "\n".join(lines) + "\n"


def selected_groups(selection: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The selection's groups per benchmark × scenario, in report order."""
    order = sort_groups(
        pd.DataFrame(
            [{k: g[k] for k in KEYS} | {"i": i} for i, g in enumerate(selection["groups"])],
            columns=[*KEYS, "i"],
        )
    )
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in order.itertuples():
        out.setdefault((r.benchmark, r.scenario), []).append(selection["groups"][r.i])
    return out


def finite(values: list[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
