"""A study config → its grid of cells, with the checks a JSON schema cannot express.

Imported by the Snakefile when it parses (once per study, and again inside every cluster job),
so it imports neither torch nor Snakemake: names and capabilities come from the torch-free
:mod:`hnet.study.catalog`. A cell is one training job; its wildcards are
``{benchmark}/{scenario}/{method}/{size}/seed{seed}``. Methods without a hypernetwork are not
multiplied by the size axis: their size is ``none`` (:data:`hnet.models.sizes.NO_SIZE`). The
rehearsal methods have a size axis of their own, the buffer (:mod:`hnet.study.buffers`).

A study with sweeps (:mod:`hnet.study.sweeps`) runs in two stages. The *tuning* cells are the
final cells' benchmark × scenario × method × size groups of swept methods, times every point of
the sweep, times ``tuning.seeds``; they train with a validation split (``tuning.val_fraction``)
and live under ``tuning/runs/`` with the point in their path
(``{benchmark}/{scenario}/{method}/{size}/{point}/seed{seed}``). The *final* cells are the grid
as without sweeps, at today's paths under ``runs/``; those of swept methods train with the
values selected from the tuning cells (:mod:`hnet.study.select`).

Errors are :class:`StudyError` messages that name the offending key (``methods[2]``,
``scenarios.toy_regression``, ``include[0].size``) and say how to fix it. The whole-config
checks (name, seeds, resources, hparams, tuning, entries that must match a cell) live in
:mod:`hnet.study.validate`; :func:`expand` runs them.
"""

from __future__ import annotations

import difflib
import itertools
import json
import shlex
from dataclasses import dataclass
from typing import Any

from hnet.errors import StudyError
from hnet.models.sizes import RATIO
from hnet.study import autores, buffers, catalog, sweeps, validate
from hnet.study.sweeps import Point

NO_SIZE = "none"  # the size wildcard of methods the size axis does not apply to
AXES = ("benchmark", "scenario", "method", "size", "seed")
RUNS = "runs"  # final cells, below results/<study>/
TUNING_RUNS = "tuning/runs"  # tuning cells (studies with sweeps), below results/<study>/


@dataclass(frozen=True, order=True)
class Cell:
    benchmark: str
    scenario: str
    method: str
    size: str
    seed: int
    point: Point = ()  # tuning cells: the swept values; () for final cells

    @property
    def path(self) -> str:
        """The cell's run directory below ``results/<study>/runs/`` (tuning cells: below
        ``tuning/runs/``, with the point's directory before the seed)."""
        head = f"{self.benchmark}/{self.scenario}/{self.method}/{self.size}"
        if self.point:
            head += "/" + sweeps.point_dir(self.method, self.point)
        return f"{head}/seed{self.seed}"

    @property
    def run_dir(self) -> str:
        """The run directory relative to ``results/<study>/``."""
        return f"{TUNING_RUNS if self.point else RUNS}/{self.path}"

    @property
    def group(self) -> tuple[str, str, str, str]:
        """benchmark, scenario, method, size: what a selected value applies to."""
        return (self.benchmark, self.scenario, self.method, self.size)


def _unknown(key: str, value: str, known: list[str], what: str) -> StudyError:
    close = difflib.get_close_matches(value, known, n=2)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    return StudyError(
        f"study config: {key} = {value!r} is not a known {what}.{hint} "
        f"Known {what}s: {', '.join(known)} (`hnet list` describes them)."
    )


def _check_name(key: str, value: str, kind: str) -> None:
    cat = catalog.load()
    if kind == "size":
        if not catalog.is_valid_size(value):
            raise StudyError(
                f"study config: {key} = {value!r} is not a hypernetwork size. Use 'official' "
                f"(the benchmark's), a preset ({', '.join(cat['sizes'][1:])}) or a compression "
                "ratio like cr0.5."
            )
        ratio = RATIO.fullmatch(value)
        if ratio and float(ratio.group(1)) <= 0:
            raise StudyError(
                f"study config: {key} = {value!r} asks for a compression ratio of 0, which no "
                "hypernetwork has; use a positive ratio like cr0.5."
            )
        return
    known = sorted(cat[kind + "s"])
    if value not in known:
        raise _unknown(key, value, known, kind)


def _check_supported(key: str, cell: Cell) -> None:
    cat = catalog.load()
    bench_sc = cat["benchmarks"][cell.benchmark]["scenarios"]
    if cell.scenario not in bench_sc:
        raise StudyError(
            f"study config: {key}: benchmark {cell.benchmark!r} does not support scenario "
            f"{cell.scenario!r} (only {', '.join(bench_sc)}). List scenarios per benchmark "
            f"(scenarios: {{{cell.benchmark}: [{', '.join(bench_sc)}], ...}}) or exclude the cells."
        )
    meth_sc = cat["methods"][cell.method]["scenarios"]
    if cell.scenario not in meth_sc:
        raise StudyError(
            f"study config: {key}: method {cell.method!r} does not support scenario "
            f"{cell.scenario!r} (only {', '.join(meth_sc)}). Exclude those cells "
            f"(exclude: [{{method: {cell.method}, scenario: {cell.scenario}}}])."
        )
    meth_b = cat["methods"][cell.method].get("benchmarks")
    if meth_b is not None and cell.benchmark not in meth_b:
        raise StudyError(
            f"study config: {key}: method {cell.method!r} does not support benchmark "
            f"{cell.benchmark!r} (only {', '.join(meth_b)}). Exclude those cells "
            f"(exclude: [{{method: {cell.method}, benchmark: {cell.benchmark}}}])."
        )


sized = catalog.is_sized
rehearsal = catalog.is_rehearsal


def _check_report(config: dict[str, Any]) -> None:
    ref = (config.get("report") or {}).get("hnet_reference")
    if ref is not None and ref not in config.get("sizes", ["official"]):
        raise StudyError(
            f"study config: report.hnet_reference = {ref!r} is not one of the study's sizes "
            f"({', '.join(config.get('sizes', ['official']))}); the paired comparison needs "
            "runs of the reference."
        )


def hnet_reference(config: dict[str, Any]) -> str:
    """The hypernetwork size every method is compared with in the paired table, fixed by the
    study before any result exists: ``report.hnet_reference``, else the first listed size."""
    ref = (config.get("report") or {}).get("hnet_reference")
    return ref if ref is not None else config.get("sizes", ["official"])[0]


def _check_names(config: dict[str, Any]) -> None:
    for i, b in enumerate(config["benchmarks"]):
        _check_name(f"benchmarks[{i}]", b, "benchmark")
    if isinstance(config["scenarios"], dict):
        for b in config["scenarios"]:
            if b not in config["benchmarks"]:
                raise StudyError(
                    f"study config: scenarios.{b}: {b!r} is not in benchmarks "
                    f"({', '.join(config['benchmarks'])})."
                )
    for i, m in enumerate(config["methods"]):
        _check_name(f"methods[{i}]", m, "method")
    for i, s in enumerate(config.get("sizes", ["official"])):
        _check_name(f"sizes[{i}]", s, "size")
    hp = config.get("hparams", {})
    for section, kind in (("benchmarks", "benchmark"), ("methods", "method")):
        for name in hp.get(section, {}):
            _check_name(f"hparams.{section}.{name}", name, kind)
    for name in hp.get("scenarios", {}):
        if name not in catalog.load()["scenarios"]:
            raise _unknown(
                f"hparams.scenarios.{name}", name, catalog.load()["scenarios"], "scenario"
            )
    for name in config.get("resources", {}):
        if name != "default":
            _check_name(f"resources.{name}", name, "benchmark")


def expand(config: dict[str, Any]) -> list[Cell]:
    """Every (final) cell of the study, sorted; raises StudyError on a bad config, sweeps
    included (:func:`tuning_cells` lists the tuning stage)."""
    validate.check_config(config)
    _check_names(config)
    _check_report(config)
    validate.check_tuning(config)
    sizes = config.get("sizes", ["official"])
    buffers.check_axis(config)
    for i, pattern in enumerate(config.get("exclude", [])):
        for axis in ("benchmark", "method", "scenario"):
            if axis in pattern:
                known = sorted(catalog.load()[axis + "s"])
                if pattern[axis] not in known:
                    raise _unknown(f"exclude[{i}].{axis}", pattern[axis], known, axis)
    excluded = validate.Patterns(config.get("exclude", []), AXES)
    product: list[Cell] = []  # every cell before exclusion: what exclude patterns must match
    cells: set[Cell] = set()
    for b in config["benchmarks"]:
        for sc, m, seed in itertools.product(
            validate.scenarios_of(config, b), config["methods"], config["seeds"]
        ):
            if sized(m):
                axis = sizes
            elif rehearsal(m):
                axis = buffers.axis(config, b, sc, m)
            else:
                axis = [NO_SIZE]
            for size in axis:
                cell = Cell(b, sc, m, size, int(seed))
                product.append(cell)
                if excluded.matching(cell):  # excluded: need not be supported
                    continue
                _check_supported(f"scenarios ({b} × {sc} × {m})", cell)
                cells.add(cell)
    for i, inc in enumerate(config.get("include", [])):
        for axis in ("benchmark", "scenario", "method"):
            _check_name(f"include[{i}].{axis}", inc[axis], axis)
        if sized(inc["method"]):
            size = inc.get("size", "official")
            _check_name(f"include[{i}].size", size, "size")
        elif rehearsal(inc["method"]):
            size = buffers.include_size(config, i, inc)
        elif "size" in inc:
            raise StudyError(
                f"study config: include[{i}].size: method {inc['method']!r} has no "
                "hypernetwork, so it takes no size; drop the key."
            )
        else:
            size = NO_SIZE
        cell = Cell(inc["benchmark"], inc["scenario"], inc["method"], size, int(inc["seed"]))
        _check_supported(f"include[{i}]", cell)
        if cell in cells:
            raise StudyError(
                f"study config: include[{i}] adds {cell.path}, which the grid already has, so it "
                "does nothing; drop the entry (include is for cells outside the product)."
            )
        hits = excluded.matching(cell)
        if hits:
            raise StudyError(
                f"study config: include[{i}] adds {cell.path}, which exclude[{hits[0]}] removes "
                "again, so it does nothing; drop one of the two entries."
            )
        product.append(cell)
        cells.add(cell)
    if not cells:
        raise StudyError("study config: the grid is empty (exclude removed every cell).")
    grid = sorted(cells)
    validate.check_entries(config, excluded, product, grid)
    return grid


# -- two stages: tuning cells and the selection they feed -------------------------------------


def tuning_cells(config: dict[str, Any], cells: list[Cell]) -> list[Cell]:
    """The tuning stage of the final ``cells``: every benchmark × scenario × method × size group
    of a swept method, times the points of its sweep, times ``tuning.seeds``; ``exclude``
    patterns apply too. Sorted; [] without sweeps."""
    if not config.get("tuning"):
        return []
    pts: dict[tuple[str, str], list[Point]] = {}
    out: set[Cell] = set()
    groups = sorted({c.group for c in cells})
    for b, sc, m, size in groups:
        if (b, m) not in pts:
            pts[b, m] = sweeps.points(config, b, m)
        for point in pts[b, m]:
            for seed in config["tuning"]["seeds"]:
                out.add(Cell(b, sc, m, size, int(seed), point))
    excluded = validate.Patterns(config.get("exclude", []), AXES)
    out = {c for c in out if not excluded.matching(c)}
    left = {c.group for c in out}
    for g in groups:
        if pts.get((g[0], g[2])) and g not in left:
            raise StudyError(
                f"study config: exclude removes every tuning cell of {'/'.join(g)}, whose final "
                "cells need a selected value; keep at least one tuning seed."
            )
    return sorted(out)


def swept(config: dict[str, Any], cell: Cell) -> bool:
    """Does this final cell train with values selected in the tuning stage?"""
    return bool(config.get("tuning")) and sweeps.is_swept(config, cell.benchmark, cell.method)


def tuning_record(config: dict[str, Any], cells: list[Cell]) -> list[dict[str, Any]]:
    """The tuning cells as JSON (grid.json, the selection step): each with its point's values,
    directory and index in the sweep's listed order (which breaks ties)."""
    order: dict[tuple[str, str], list[Point]] = {}
    out = []
    for c in cells:
        if (c.benchmark, c.method) not in order:
            order[c.benchmark, c.method] = sweeps.points(config, c.benchmark, c.method)
        out.append(
            {
                **{a: getattr(c, a) for a in AXES},
                "point": sweeps.values_of(c.point),
                "point_dir": sweeps.point_dir(c.method, c.point),
                "point_index": order[c.benchmark, c.method].index(c.point),
                "run_dir": c.run_dir,
            }
        )
    return out


def overrides(
    config: dict[str, Any], cell: Cell, selected: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The cell's ``--set`` overrides: all < benchmarks.<b> < scenarios.<s> < methods.<m>, then
    for a tuning cell the validation split and its point, for a final cell of a swept method
    the ``selected`` values."""
    hp = config.get("hparams", {})
    out: dict[str, Any] = dict(hp.get("all", {}))
    out.update(hp.get("benchmarks", {}).get(cell.benchmark, {}))
    out.update(hp.get("scenarios", {}).get(cell.scenario, {}))
    out.update(hp.get("methods", {}).get(cell.method, {}))
    if not rehearsal(cell.method):  # hparams' buffer keys are for the rehearsal methods only
        out = {k: v for k, v in out.items() if k.split(".")[0] != "buffer"}
    elif (n := buffers.size_of(cell.method, cell.size)) is not None:
        out["buffer.size"] = n  # the cell's place on the buffer axis
    if cell.point:
        out["data.val_fraction"] = config["tuning"].get("val_fraction", 0.1)
        out.update(sweeps.values_of(cell.point))
    elif selected:
        out.update(selected)
    return out


def train_args(config: dict[str, Any], cell: Cell, selected: dict[str, Any] | None = None) -> str:
    """Shell-quoted ``hnet train`` arguments of a cell (besides --out and tracking)."""
    args = [
        "--benchmark",
        cell.benchmark,
        "--scenario",
        cell.scenario,
        "--method",
        cell.method,
        "--seed",
        str(cell.seed),
        "--device",
        config.get("device", "auto"),
    ]
    if sized(cell.method):
        args += ["--size", cell.size]
    for key, value in sorted(overrides(config, cell, selected).items()):
        args += ["--set", f"{key}={json.dumps(value)}"]
    return shlex.join(args)


def resources(config: dict[str, Any], benchmark: str) -> dict[str, Any]:
    """Per-job resources: built-in defaults < resources.default < resources.<benchmark>.
    ``runtime`` and ``mem_mb`` may be ``"auto"``: measured per benchmark × method
    (:mod:`hnet.study.autores`)."""
    return autores.fixed(config, benchmark)


def grid_record(
    config: dict[str, Any], cells: list[Cell], tuning: list[Cell] | None = None
) -> dict[str, Any]:
    """``grid.json``: the expected (final) cells, read by ``hnet report --expected``, and the
    tuning cells when the study has sweeps."""
    record: dict[str, Any] = {
        "study": config["study"],
        "cells": [{a: getattr(c, a) for a in AXES} | {"run_dir": c.run_dir} for c in cells],
    }
    if tuning:
        record["tuning"] = tuning_record(config, tuning)
    return record
