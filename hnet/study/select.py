"""Selection: one value per swept group, chosen from the tuning cells by a validation metric.

Why a module of its own: the rule that turns tuning results into the values of the final runs
is what makes a study fair, so it is written down once, small enough to read, and recorded with
its result. The rule:

- **One metric, validation only.** ``tuning.metric`` is a ``val_*`` metric of
  :data:`hnet.metrics.VALIDATION_METRICS` (default ``val_acc_final``); its direction is the one of
  the test metric it mirrors. A tuning run's ``metrics.json`` is read for that key (and the
  run's config, to check it is the expected point) and nothing else, so test scores cannot
  influence the choice.
- **One aggregate over the tuning seeds**: ``mean`` (default) or ``median``.
- **Ties go to the first value in the sweep's listed order**, so a selection never depends on
  float noise in a sort.
- **Per benchmark × scenario × method × size**: every final cell of that group trains with the
  selected values.

The result, ``selection.json``, holds the rule, the selected values and every candidate's per-seed
scores: the report draws the sensitivity figures and the selected-values table from it.
Standard library only (the Snakefile reads the selected values while it builds the DAG).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hnet.errors import HnetError

AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "mean": statistics.fmean,
    "median": statistics.median,
}
TIES = "the value listed first in the sweep"
GROUP = ("benchmark", "scenario", "method", "size")


def _load(path: Path) -> Mapping[str, Any]:
    """A tuning run's metrics.json (a seam for the test that selection reads no test metric)."""
    try:
        return json.loads(path.read_text())
    except ValueError as e:  # truncated (a full disk, a broken copy) or not JSON at all
        raise HnetError(
            f"{path} is damaged (not valid JSON: {e}). Rerun the study: it moves the file "
            "aside and the cell's job recomputes it from its final checkpoint."
        ) from e


def _config_value(cfg: Mapping[str, Any], key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def read_score(path: Path, metric: str, point: dict[str, Any]) -> float:
    """The selection metric of one tuning run (NaN when undefined, e.g. BWT of one task).
    Reads ``metric`` and, to refuse a stale run directory, the swept keys of ``config``."""
    m = _load(path)
    cfg = m.get("config") or {}
    for key, value in point.items():
        if _config_value(cfg, key) != value:
            raise HnetError(
                f"{path}: the run has {key} = {_config_value(cfg, key)!r}, its tuning cell "
                f"{value!r}; move the directory away and rerun the study."
            )
    v = m.get(metric)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def rule(metric: str, aggregate: str, seeds: list[int]) -> dict[str, Any]:
    """The selection rule as recorded in selection.json and printed in the report."""
    from hnet.metrics import VALIDATION_METRICS

    by_name = {m.name: m for m in VALIDATION_METRICS}
    if metric not in by_name:
        raise HnetError(
            f"selection metric {metric!r} is not a validation metric ({', '.join(by_name)}); "
            "selection never ranks test metrics."
        )
    if aggregate not in AGGREGATES:
        raise HnetError(f"selection aggregate {aggregate!r}: use {' or '.join(AGGREGATES)}.")
    m = by_name[metric]
    better = "higher" if m.direction > 0 else "lower"
    return {
        "metric": metric,
        "label": m.label,
        "aggregate": aggregate,
        "direction": m.direction,
        "seeds": sorted(seeds),
        "ties": TIES,
        "text": (
            f"per benchmark × scenario × method × size, the swept value with the best "
            f"{aggregate} {metric} ({m.label}, {better} is better) over tuning seeds "
            f"{', '.join(map(str, sorted(seeds)))}; ties go to {TIES}; test metrics are never "
            "read."
        ),
    }


def select(
    tuning: list[dict[str, Any]], root: str | Path, metric: str, aggregate: str = "mean"
) -> dict[str, Any]:
    """Apply the rule to the tuning cells ``tuning`` (``grid.tuning_record``: axes, point,
    point_dir, point_index, run_dir relative to ``root``). Every tuning cell must have finished."""
    root = Path(root)
    the_rule = rule(metric, aggregate, sorted({int(c["seed"]) for c in tuning}))
    missing = [c["run_dir"] for c in tuning if not (root / c["run_dir"] / "metrics.json").exists()]
    if missing:
        raise HnetError(
            f"selection needs every tuning cell; {len(missing)} of {len(tuning)} have no "
            f"metrics.json ({', '.join(missing[:3])}{', …' if len(missing) > 3 else ''}). "
            "Rerun the study to finish them (a failed one says why in its failed.json)."
        )
    groups: dict[tuple, dict[int, dict[str, Any]]] = {}
    for c in tuning:
        cands = groups.setdefault(tuple(c[k] for k in GROUP), {})
        cand = cands.setdefault(
            c["point_index"],
            {"point": c["point"], "point_dir": c["point_dir"], "seeds": [], "scores": []},
        )
        cand["seeds"].append(int(c["seed"]))
        cand["scores"].append(read_score(root / c["run_dir"] / "metrics.json", metric, c["point"]))
    out = []
    for key, cands in groups.items():
        ordered = [cands[i] for i in sorted(cands)]
        best = None
        for cand in ordered:
            finite = [s for s in cand["scores"] if math.isfinite(s)]
            cand["value"] = AGGREGATES[aggregate](finite) if finite else None
            v = cand["value"]
            if v is not None and (best is None or (v - best["value"]) * the_rule["direction"] > 0):
                best = cand
        if best is None:
            raise HnetError(
                f"selection for {'/'.join(key)}: no tuning run has a finite {metric}; choose "
                "a metric defined for this benchmark (val_acc_final always is)."
            )
        for cand in ordered:  # JSON has no NaN: undefined scores are null
            cand["scores"] = [s if math.isfinite(s) else None for s in cand["scores"]]
        out.append(
            dict(zip(GROUP, key, strict=True))
            | {
                "keys": list(best["point"]),
                "selected": best["point"],
                "selected_dir": best["point_dir"],
                "candidates": ordered,
            }
        )
    return {"rule": the_rule, "groups": out}


def selected_for(selection: Mapping[str, Any], group: tuple[str, ...]) -> dict[str, Any] | None:
    """The values selected for a (benchmark, scenario, method, size) group, or None."""
    for g in selection.get("groups", []):
        if tuple(g[k] for k in GROUP) == tuple(group):
            return dict(g["selected"])
    return None
