"""Official and tuned hyperparameters as data: ``tuned/<method>.yaml``, one entry per exact
benchmark (and optionally scenario), each with its source.

They point one way: a method's values for a benchmark live here, never in the benchmark's module
(which holds only the benchmark's own settings: data, target network, training schedule). The
job config merges them over the method's defaults; ``hnet train --print-config`` shows which
entry each value came from. Loading needs only PyYAML, so study checks stay torch-free.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

DIR = Path(__file__).parent
#: files of config sections shared by several methods rather than one method's section:
#: ``buffer.yaml`` sets ``buffer.size`` for every rehearsal method (hnet.config.REHEARSAL_DEFAULTS)
SHARED = ("buffer",)


@cache
def entries(name: str) -> tuple[dict[str, Any], ...]:
    """The entries of ``tuned/<name>.yaml`` (none when the file does not exist)."""
    path = DIR / f"{name}.yaml"
    if not path.exists():
        return ()
    data = yaml.safe_load(path.read_text()) or []
    return tuple(data)


def matches(
    name: str, benchmark: str, scenario: str, method: str | None = None
) -> list[tuple[dict[str, Any], str]]:
    """(values, source) of each entry of ``name`` that matches, in file order (later win). An
    entry of a shared file (:data:`SHARED`) may name the ``methods`` it is for."""
    return [
        (entry["values"], entry["source"])
        for entry in entries(name)
        if benchmark in entry["benchmarks"]
        and scenario in entry.get("scenarios", (scenario,))
        and (method is None or method in entry.get("methods", (method,)))
    ]


def lookup(name: str, benchmark: str, scenario: str) -> tuple[dict[str, Any], str | None]:
    """(values, source) of the entries of ``name`` that match; later entries win (the source
    is the last matching entry's)."""
    found = matches(name, benchmark, scenario)
    values: dict[str, Any] = {}
    for entry_values, _ in found:
        values.update(entry_values)
    return values, found[-1][1] if found else None
