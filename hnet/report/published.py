"""Published results (``published.yaml`` beside this module) as checked, flat records.

The report shows a published number beside each measured final accuracy, so a reader sees at
once whether a method reproduces what its authors or a maintained library reported, and under
which protocol. The file holds only numbers read in a public source, each with the place it
was read; it is organised as the sources print their tables, and this module flattens every
table row × scenario column into one :class:`Published` record that carries every field.

Standard library, PyYAML and hnet's torch-free catalog only: the records are data, read by the
report and by tests without torch or pandas. Every mistake in the file is a
:class:`~hnet.errors.ConfigError` naming the table, row and key and how to fix it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from hnet.errors import ConfigError
from hnet.study import catalog

PATH = Path(__file__).with_name("published.yaml")

#: methods being added with issue 30 in parallel branches; accepted before their registration
#: lands, so the data can name them (the catalog is the truth for every other name)
PARALLEL_METHODS = ("lwf", "agem", "icarl", "derpp", "er_ace", "gdumb", "hat", "packnet", "xdg")

#: benchmarks that run the same task protocol on other data: a published number on the
#: family's MNIST benchmark is shown beside runs on each member, with the data set flagged
FAMILIES: dict[str, tuple[str, ...]] = {
    "split_mnist": ("split_mnist", "split_fmnist", "split_digits"),
    "permuted_mnist": ("permuted_mnist", "permuted_fmnist", "permuted_digits"),
}
#: the data set behind each benchmark of a family (what "data set differs" compares)
DATASETS = {
    "split_mnist": "MNIST",
    "permuted_mnist": "MNIST",
    "split_fmnist": "Fashion-MNIST",
    "permuted_fmnist": "Fashion-MNIST",
    "split_digits": "scikit-learn digits (8×8)",
    "permuted_digits": "scikit-learn digits (8×8)",
}
METRICS = ("acc_final",)
TRAINING_KEYS = ("epochs_per_task", "iters_per_task")

TABLE_KEYS = (
    "id",
    "cite",
    "source",
    "repository",
    "commit",
    "where",
    "benchmark",
    "hnet_benchmark",
    "metric",
    "n_runs",
    "spread",
    "protocol",
    "columns",
    "rows",
)
PROTOCOL_KEYS = (
    "dataset",
    "tasks",
    "network",
    "hidden",
    *TRAINING_KEYS,
    "batch_size",
    "optimizer",
    "buffer",
    "notes",
)
#: protocol keys a row may set for itself (a table of methods with different buffers, nets …)
ROW_PROTOCOL_KEYS = tuple(k for k in PROTOCOL_KEYS if k != "dataset")
ROW_KEYS = ("method", "original")


@dataclass(frozen=True)
class Protocol:
    """How a published number was obtained, in the fields hnet can compare with its own runs."""

    dataset: str
    tasks: int
    network: str
    hidden: tuple[int, ...] | None  # MLP hidden widths; None: not stated or not an MLP
    epochs_per_task: float | None  # exactly one of the two training lengths is set
    iters_per_task: int | None
    batch_size: int | None
    optimizer: str
    buffer: int | None  # stored inputs after the last task; None: the method stores none
    notes: str

    def training(self) -> str:
        if self.iters_per_task is not None:
            return f"{self.iters_per_task} steps/task"
        return f"{self.epochs_per_task:g} epochs/task"


@dataclass(frozen=True)
class Published:
    """One published number: a method's final accuracy on a benchmark in one scenario."""

    table: str  # the table id in published.yaml
    cite: str  # short reference ("Hsu et al. 2018")
    benchmark: str  # as the source names it
    hnet_benchmark: str
    family: str
    scenario: str
    method: str  # hnet's name
    original_method: str  # the source's name
    metric: str
    value: float
    std: float | None
    spread: str | None  # what ``std`` is (the source's ± in its own words)
    n_runs: int | None
    protocol: Protocol
    source: str
    repository: str
    commit: str
    where: str  # file and section, plus the column the number sits in


def family(benchmark: str) -> str:
    """The family a benchmark belongs to (its own name when it has no family)."""
    for name, members in FAMILIES.items():
        if benchmark in members:
            return name
    return benchmark


def dataset(benchmark: str) -> str:
    return DATASETS.get(benchmark, benchmark)


def known_methods() -> tuple[str, ...]:
    return (*catalog.load()["methods"], *PARALLEL_METHODS)


@cache
def _load_default() -> tuple[Published, ...]:
    return parse(yaml.safe_load(PATH.read_text()), PATH.name)


def load(path: str | Path | None = None) -> tuple[Published, ...]:
    """Every published record, checked (the bundled file, read once, by default)."""
    if path is None:
        return _load_default()
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"Cannot read published results {p}: {e}. Fix the file.") from e
    return parse(data, str(p))


def parse(data: Any, origin: str = "published.yaml") -> tuple[Published, ...]:
    """Check ``data`` (the parsed YAML) and flatten it: one record per row × scenario column
    holding a number. Raises ConfigError naming the table, row and key."""
    if (
        not isinstance(data, dict)
        or set(data) != {"tables"}
        or not isinstance(data["tables"], list)
    ):
        raise ConfigError(
            f"{origin}: expected one top-level key `tables:` holding a list of tables."
        )
    out: list[Published] = []
    seen: set[str] = set()
    for i, table in enumerate(data["tables"]):
        named = isinstance(table, dict) and isinstance(table.get("id"), str)
        where = f"{origin}: " + (f"table {table['id']!r}" if named else f"tables[{i}]")
        _require_mapping(table, where, TABLE_KEYS, TABLE_KEYS)
        tid = _text(table["id"], f"{where}.id")
        if tid in seen:
            raise ConfigError(f"{where}: id {tid!r} is used twice; give each table its own id.")
        seen.add(tid)
        out += _table(table, f"{origin}: table {tid!r}")
    if not out:
        raise ConfigError(f"{origin}: no published number found; add a table with rows.")
    return tuple(out)


def _table(t: dict[str, Any], where: str) -> list[Published]:
    for key in ("source", "where", "benchmark"):
        _text(t[key], f"{where}.{key}")
    repo = _text(t["repository"], f"{where}.repository")
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        raise ConfigError(f"{where}.repository {repo!r}: write it as owner/name.")
    commit = _text(t["commit"], f"{where}.commit")
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise ConfigError(f"{where}.commit {commit!r}: give the full 40-digit commit hash.")
    bench = _text(t["hnet_benchmark"], f"{where}.hnet_benchmark")
    benchmarks = catalog.load()["benchmarks"]
    if bench not in benchmarks:
        raise ConfigError(
            f"{where}.hnet_benchmark {bench!r} is not an hnet benchmark; use one of "
            f"{', '.join(sorted(benchmarks))}."
        )
    if t["metric"] not in METRICS:
        raise ConfigError(f"{where}.metric {t['metric']!r}: only {', '.join(METRICS)} is shown.")
    n_runs = _count(t["n_runs"], f"{where}.n_runs", minimum=1, optional=True)
    spread = t["spread"]
    if spread is not None:
        _text(spread, f"{where}.spread")
    columns = t["columns"]
    allowed = benchmarks[bench]["scenarios"]
    if not isinstance(columns, dict) or not columns:
        raise ConfigError(f"{where}.columns: map each scenario (cl1, cl2, cl3) to its heading.")
    for scen, heading in columns.items():
        if scen not in allowed:
            raise ConfigError(
                f"{where}.columns: scenario {scen!r} is not one of {bench}'s "
                f"({', '.join(allowed)})."
            )
        _text(heading, f"{where}.columns.{scen}")
    base = t["protocol"]
    required = tuple(k for k in PROTOCOL_KEYS if k not in TRAINING_KEYS)  # one of them: below
    _require_mapping(base, f"{where}.protocol", required, PROTOCOL_KEYS)
    if not isinstance(t["rows"], list) or not t["rows"]:
        raise ConfigError(f"{where}.rows: list the table's rows (one per method).")
    methods = known_methods()
    out = []
    for j, row in enumerate(t["rows"]):
        rw = f"{where}.rows[{j}]"
        _require_mapping(row, rw, (*ROW_KEYS, *columns), (*ROW_KEYS, *columns, *ROW_PROTOCOL_KEYS))
        method = _text(row["method"], f"{rw}.method")
        if method not in methods:
            raise ConfigError(
                f"{rw}.method {method!r} is not an hnet method; use one of {', '.join(methods)}."
            )
        protocol = _protocol(base, row, rw)
        for scen, heading in columns.items():
            cell = row[scen]
            if cell is None:
                continue
            value, std = _cell(cell, f"{rw}.{scen}")
            if std is not None and spread is None:
                raise ConfigError(
                    f"{rw}.{scen}: a ± value needs the table's `spread` saying what it is."
                )
            out.append(
                Published(
                    table=t["id"],
                    cite=_text(t["cite"], f"{where}.cite"),
                    benchmark=t["benchmark"],
                    hnet_benchmark=bench,
                    family=family(bench),
                    scenario=scen,
                    method=method,
                    original_method=_text(row["original"], f"{rw}.original"),
                    metric=t["metric"],
                    value=value,
                    std=std,
                    spread=spread,
                    n_runs=n_runs,
                    protocol=protocol,
                    source=" ".join(t["source"].split()),
                    repository=repo,
                    commit=commit,
                    where=" ".join(t["where"].split()) + f"; column {heading!r}",
                )
            )
    return out


def _protocol(base: dict[str, Any], row: dict[str, Any], where: str) -> Protocol:
    merged = dict(base)
    if any(k in row for k in TRAINING_KEYS):  # a row's training length replaces the table's
        merged = {k: v for k, v in merged.items() if k not in TRAINING_KEYS}
    merged |= {k: row[k] for k in ROW_PROTOCOL_KEYS if k in row}
    lengths = [k for k in TRAINING_KEYS if merged.get(k) is not None]
    if len(lengths) != 1:
        raise ConfigError(
            f"{where}: give exactly one of protocol.epochs_per_task and "
            f"protocol.iters_per_task (found {', '.join(lengths) or 'none'})."
        )
    hidden = merged["hidden"]
    if hidden is not None and (
        not isinstance(hidden, list)
        or not hidden
        or not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden)
    ):
        raise ConfigError(
            f"{where}: protocol.hidden {hidden!r} must be a list of positive widths or null."
        )
    epochs = merged.get("epochs_per_task")
    if epochs is not None and not (_is_number(epochs) and epochs > 0):
        raise ConfigError(
            f"{where}: protocol.epochs_per_task {epochs!r} must be a positive number."
        )
    notes = merged["notes"]
    if not isinstance(notes, str):
        raise ConfigError(f"{where}: protocol.notes must be text ('' for none).")
    return Protocol(
        dataset=_text(merged["dataset"], f"{where}: protocol.dataset"),
        tasks=_count(merged["tasks"], f"{where}: protocol.tasks", minimum=1),
        network=_text(merged["network"], f"{where}: protocol.network"),
        hidden=None if hidden is None else tuple(hidden),
        epochs_per_task=None if epochs is None else float(epochs),
        iters_per_task=_count(
            merged.get("iters_per_task"), f"{where}: protocol.iters_per_task", 1, optional=True
        ),
        batch_size=_count(merged["batch_size"], f"{where}: protocol.batch_size", 1, optional=True),
        optimizer=_text(merged["optimizer"], f"{where}: protocol.optimizer"),
        buffer=_count(merged["buffer"], f"{where}: protocol.buffer", 0, optional=True),
        notes=" ".join(notes.split()),
    )


def _cell(cell: Any, where: str) -> tuple[float, float | None]:
    """A scenario cell: ``value`` or ``[value, spread]``, accuracies in percent."""
    if isinstance(cell, list) and len(cell) != 2:
        raise ConfigError(f"{where}: write a number, [value, spread] or null (got {cell!r}).")
    value, std = cell if isinstance(cell, list) else (cell, None)
    if not _is_number(value) or not 0 <= value <= 100:
        raise ConfigError(f"{where}: value {value!r} must be an accuracy in percent (0 to 100).")
    if std is not None and (not _is_number(std) or not 0 <= std <= 100):
        raise ConfigError(f"{where}: spread {std!r} must be a number from 0 to 100.")
    return float(value), None if std is None else float(std)


def _require_mapping(
    value: Any, where: str, required: tuple[str, ...], allowed: tuple[str, ...]
) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping with keys {', '.join(required)}.")
    missing = [k for k in required if k not in value]
    if missing:
        raise ConfigError(
            f"{where}: missing {', '.join(missing)}; every entry states every field (null where "
            "the source gives none)."
        )
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}."
        )


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be non-empty text (got {value!r}).")
    return value


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v  # not NaN


def _count(v: Any, where: str, minimum: int, optional: bool = False) -> int | None:
    if v is None and optional:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
        need = f"an integer ≥ {minimum}" + (" or null" if optional else "")
        raise ConfigError(f"{where} {v!r} must be {need}.")
    return v
