"""Whole-config checks of a study that need no data: run while the Snakefile is parsed.

:func:`hnet.study.grid.expand` calls :func:`check_config` and :func:`check_tuning` before it
builds the grid and :func:`check_entries` after, so ``snakemake -n`` refuses a study that would
fail in a job:

- the study name, matched as a whole string (``re.fullmatch``: a name ending in a line break is
  not a name);
- every seed (``seeds``, ``tuning.seeds``, ``include``) within :data:`hnet.rng.MAX_SEED`, the
  range every random generator accepts;
- ``resources`` within :data:`LIMITS`, beyond which no machine runs a job;
- ``hparams``: every entry names a benchmark, scenario or method of the study, and every key
  exists in the job config of every cell it applies to, with a value of the default's type
  (the ``--set`` type rule, :func:`hnet.config.check_type`), against the torch-free catalog;
- ``include`` adds a cell the product lacks, and every ``exclude`` pattern drops at least one
  cell (a misspelled value would silently do nothing): the message names the entry, the value
  that matched nothing and the values the grid has;
- ``tuning`` and ``sweeps`` come together, and the selection metric is a validation metric
  defined in every scenario of the study (:func:`check_tuning`).

Values a method refuses for its own reasons (``hnet.targets: offline``) and compression ratios
that no hypernetwork reaches on the benchmark's shapes are left to ``check_study``, which
imports torch and loads the data.

``python -m hnet.study.configfile FILE`` runs them on a file without Snakemake, with YAML errors
that name the line (:mod:`hnet.study.configfile`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from hnet.errors import StudyError

#: a study name, matched whole: results/<study>/ and the MLflow experiment
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: upper bounds of ``resources`` per job: beyond them no machine runs the job
LIMITS = {
    "threads": 1024,  # CPU threads of one job
    "mem_mb": 16 * 1024 * 1024,  # 16 TiB
    "runtime": 365 * 24 * 60,  # minutes: one year
    "gpu": 64,
}
REQUIRED = ("study", "benchmarks", "scenarios", "methods", "seeds")
DEFAULT_CONFIG = "workflow/config/default.yaml"


def check_not_empty(config: dict[str, Any], files: Iterable[Any] = ()) -> None:
    """A given study config that is empty would plan some other study; refuse it."""
    if config:
        return
    names = ", ".join(str(f) for f in files) or "the study config"
    raise StudyError(
        f"study config {names} is empty. A study needs {', '.join(REQUIRED)} "
        f"(docs/studies.md, Writing a study config); copy {DEFAULT_CONFIG} to start, or run "
        "without --configfile for the demo study."
    )


def schema_message(error: Any, files: Iterable[Any] = ()) -> str:
    """One line for a JSON-schema ``ValidationError``: where in the config, and what."""
    where = ""
    for part in getattr(error, "absolute_path", []):
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    names = ", ".join(str(f) for f in files)
    head = f"study config {names}" if names else "study config"
    return (
        f"{head}: {where or 'top level'}: {error.message} "
        "(workflow/schemas/study.schema.yaml lists every key; docs/studies.md explains them)."
    )


def check_config(config: dict[str, Any]) -> None:
    """Name, seeds and resources (after the schema, before the grid)."""
    name = config.get("study")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise StudyError(
            f"study config: study = {name!r} is not a study name: use letters, digits and "
            "_ . - only, starting with a letter or digit, on one line (it becomes "
            "results/<study>/ and the MLflow experiment)."
        )
    check_seeds(config)
    check_resources(config)


def check_seeds(config: dict[str, Any]) -> None:
    from hnet.rng import MAX_SEED  # numpy, which Snakemake has imported already

    lists = [("seeds", config.get("seeds", []))]
    lists.append(("tuning.seeds", (config.get("tuning") or {}).get("seeds", [])))
    lists += [
        (f"include[{i}].seed", [inc.get("seed")]) for i, inc in enumerate(config.get("include", []))
    ]
    lists += [
        (f"exclude[{i}].seed", [p["seed"]])
        for i, p in enumerate(config.get("exclude", []))
        if "seed" in p
    ]
    for key, seeds in lists:
        for i, seed in enumerate(seeds):
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
                at = f"{key}[{i}]" if key.endswith("seeds") else key
                raise StudyError(
                    f"study config: {at} = {seed!r} is not a seed: seeds are integers from 0 to "
                    f"{MAX_SEED} (2**32 - 1, the range every random generator accepts)."
                )


def check_resources(config: dict[str, Any]) -> None:
    for entry, res in (config.get("resources") or {}).items():
        if res == "auto":  # runtime and mem_mb measured (hnet.study.autores)
            continue
        for key, value in (res or {}).items():
            limit = LIMITS.get(key)
            if limit is not None and isinstance(value, int) and value > limit:
                raise StudyError(
                    f"study config: resources.{entry}.{key} = {value} is beyond what any machine "
                    f"gives one job (at most {limit}{_UNITS[key]}); ask for what a job needs "
                    "(docs/studies.md, device and resources)."
                )


_UNITS = {"threads": " threads", "mem_mb": " MB, 16 TiB", "runtime": " minutes, a year", "gpu": ""}


# -- entries that must apply to something ------------------------------------------------------


class Patterns:
    """``exclude`` patterns, matched in time linear in the cells: the patterns are grouped by
    the axes they name, and a cell is looked up once per group. Remembers which patterns
    matched something."""

    def __init__(self, patterns: list[dict[str, Any]], axes: tuple[str, ...]) -> None:
        self.patterns = patterns
        self.groups: dict[tuple[str, ...], dict[tuple, list[int]]] = defaultdict(dict)
        for i, p in enumerate(patterns):
            keys = tuple(a for a in axes if a in p)
            self.groups[keys].setdefault(tuple(p[a] for a in keys), []).append(i)
        self.hit = [False] * len(patterns)

    def matching(self, cell: Any) -> list[int]:
        """Indices of the patterns ``cell`` matches (every axis a pattern names is equal)."""
        out: list[int] = []
        for keys, table in self.groups.items():
            out += table.get(tuple(getattr(cell, a) for a in keys), ())
        for i in out:
            self.hit[i] = True
        return out


def check_entries(
    config: dict[str, Any], excluded: Patterns, product: list[Any], cells: list[Any]
) -> None:
    """``exclude`` patterns, ``hparams`` and ``resources`` entries must each apply to some cell
    (``product``: every cell before exclusion, include cells added; ``cells``: the grid); the
    hparams keys and value types must fit every cell they apply to."""
    for i, p in enumerate(excluded.patterns):
        if not excluded.hit[i]:
            raise StudyError(_no_match(f"exclude[{i}]", p, product))
    check_hparams(config, cells)
    for name in config.get("resources") or {}:
        if name != "default" and name not in config["benchmarks"]:
            raise StudyError(
                f"study config: resources.{name}: {name!r} is not in benchmarks "
                f"({', '.join(config['benchmarks'])}), so it applies to no job; fix the name "
                "or drop the entry."
            )


def _no_match(where: str, pattern: dict[str, Any], product: list[Any]) -> str:
    values = {a: sorted({getattr(c, a) for c in product}, key=str) for a in pattern}
    text = ", ".join(f"{a}: {v}" for a, v in pattern.items())
    for axis, value in pattern.items():
        if value not in values[axis]:
            listed = ", ".join(map(str, values[axis]))
            return (
                f"study config: {where} = {{{text}}} matches no cell, so it excludes nothing: "
                f"{axis} {value!r} is not a {axis} of the grid (its {axis}s: {listed}). Fix the "
                "value or drop the entry."
            )
    return (
        f"study config: {where} = {{{text}}} matches no cell, so it excludes nothing: no cell "
        "has all these values together (methods without a hypernetwork have size 'none'). Fix "
        "the entry or drop it."
    )


def check_hparams(config: dict[str, Any], cells: list[Any]) -> None:
    """Each hparams entry applies to some cell; each key exists, with the default's type, in
    the job config of every (benchmark, method) it applies to (catalog defaults: no torch)."""
    from hnet.study import catalog, sweeps

    hp = config.get("hparams") or {}
    pairs = sorted({(c.benchmark, c.scenario, c.method) for c in cells})
    layers: list[tuple[str, dict[str, Any], set[tuple[str, str]]]] = []
    if hp.get("all"):
        layers.append(("hparams.all", hp["all"], {(b, m) for b, _, m in pairs}))
    for section, at in (("benchmarks", 0), ("scenarios", 1), ("methods", 2)):
        for name, values in (hp.get(section) or {}).items():
            applies = {(b, m) for b, s, m in pairs if (b, s, m)[at] == name}
            where = f"hparams.{section}.{name}"
            if not applies:
                known = sorted({p[at] for p in pairs})
                raise StudyError(
                    f"study config: {where}: no cell of the grid has {section[:-1]} {name!r}, so "
                    f"these values apply to no job (the grid's {section}: {', '.join(known)}). "
                    "Fix the name or drop the entry."
                )
            layers.append((where, values or {}, applies))
    for where, values, applies in layers:
        for key, value in values.items():
            targets = applies
            if key.split(".")[0] == "buffer" and not where.startswith("hparams.methods."):
                # like the size axis: buffer keys apply to the rehearsal methods only
                targets = {(b, m) for b, m in applies if catalog.is_rehearsal(m)}
                if not targets:
                    raise StudyError(
                        f"study config: {where}.{key}: no rehearsal method (one that stores "
                        "training samples) is among the cells it applies to, so it applies to "
                        "no job; add one to methods or drop the key."
                    )
            for benchmark, method in sorted(targets):
                sweeps.check_value(benchmark, method, key, value, f"{where}.{key}", "set")


def scenarios_of(config: dict[str, Any], benchmark: str) -> list[str]:
    """The scenarios of ``benchmark``: ``scenarios`` is one list for all benchmarks, or a
    mapping that must name each of them."""
    sc = config["scenarios"]
    if isinstance(sc, dict):
        if benchmark not in sc:
            raise StudyError(
                f"study config: scenarios has no entry for benchmark {benchmark!r}. When "
                "scenarios is a mapping, list the scenarios of every benchmark "
                f"(scenarios: {{{benchmark}: [cl1], ...}}), or make it one list for all."
            )
        return list(sc[benchmark])
    return list(sc)


def check_tuning(config: dict[str, Any]) -> None:
    """``tuning`` and ``sweeps`` belong together; the selection metric is a validation one."""
    from hnet.study import sweeps

    has_sweeps, tuning = sweeps.any_sweeps(config), config.get("tuning")
    sweeps.check_sweeps(config)
    if has_sweeps and not tuning:
        raise StudyError(
            "study config: sweeps need a tuning stage: add tuning: {seeds: [...]} (the seeds "
            "of the tuning cells; docs/studies.md, Sweeps)."
        )
    if tuning and not has_sweeps:
        raise StudyError(
            "study config: tuning is given but sweeps lists no values to tune; add sweeps or "
            "drop tuning."
        )
    if tuning:
        from hnet.metrics import VALIDATION_METRICS, not_applicable

        names = [m.name for m in VALIDATION_METRICS]
        if tuning.get("metric", names[0]) not in names:
            raise StudyError(
                f"study config: tuning.metric = {tuning['metric']!r} is not a validation metric; "
                f"selection ranks {', '.join(names)} only (never a test metric)."
            )
        metric = tuning.get("metric", names[0])
        for b in config["benchmarks"]:
            for sc in scenarios_of(config, b):
                why = not_applicable(sc, validation=True).get(metric)
                if why:
                    raise StudyError(
                        f"study config: tuning.metric = {metric!r} is not applicable in {sc} "
                        f"({why}); rank val_acc_final or another metric defined there."
                    )
