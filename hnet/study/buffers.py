"""The rehearsal methods' axis of a study grid: their buffer size.

The rehearsal methods (those with ``buffer.size``) are not multiplied by the hypernetwork sizes;
their size wildcard is the buffer, ``buf<N>``, for each of the study's ``buffer_sizes`` (without
it, the one ``buffer.size`` their hparams or their default give). So a study compares methods at
several memory budgets as it compares hypernetworks at several sizes, and the report reads the
same ``buf<N>`` from each run's config. Torch-free, like the rest of :mod:`hnet.study.grid`.
"""

from __future__ import annotations

from typing import Any

from hnet.errors import StudyError
from hnet.models.sizes import BUFFER, buffer_label
from hnet.study import catalog


def _from_hparams(config: dict[str, Any], benchmark: str, scenario: str, method: str) -> Any:
    """``buffer.size`` as the study's hparams set it for these cells (later layers win), or
    None."""
    hp = config.get("hparams") or {}
    found = None
    for layer in (
        hp.get("all"),
        (hp.get("benchmarks") or {}).get(benchmark),
        (hp.get("scenarios") or {}).get(scenario),
        (hp.get("methods") or {}).get(method),
    ):
        if layer and "buffer.size" in layer:
            found = layer["buffer.size"]
    return found


def default(config: dict[str, Any], benchmark: str, scenario: str, method: str) -> str:
    """The buffer size of a rehearsal method's cell without ``buffer_sizes``: hparams, else the
    method's default on the benchmark (tuned/buffer.yaml)."""
    value = _from_hparams(config, benchmark, scenario, method)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):  # wrong types: check_hparams
        value = catalog.default_buffer_size(method, benchmark)
    return buffer_label(value)


def axis(config: dict[str, Any], benchmark: str, scenario: str, method: str) -> list[str]:
    """The sizes of a rehearsal method's cells: ``buf<N>`` per ``buffer_sizes`` entry, or the
    one :func:`default`. Setting ``buffer.size`` in hparams as well is refused."""
    listed = config.get("buffer_sizes")
    if not listed:
        return [default(config, benchmark, scenario, method)]
    if _from_hparams(config, benchmark, scenario, method) is not None:
        raise StudyError(
            f"study config: hparams set buffer.size for {method} on {benchmark} {scenario}, and "
            "buffer_sizes lists the buffer sizes of every rehearsal method; give the sizes in "
            "one place (buffer_sizes, or hparams without buffer_sizes)."
        )
    return [buffer_label(n) for n in listed]


def check_axis(config: dict[str, Any]) -> None:
    """``buffer_sizes`` only where a rehearsal method is there to multiply."""
    if config.get("buffer_sizes") and not any(catalog.is_rehearsal(m) for m in config["methods"]):
        raise StudyError(
            "study config: buffer_sizes is given, but no method of the study stores training "
            f"samples ({', '.join(config['methods'])}), so it multiplies nothing; add a "
            "rehearsal method (e.g. replay) or drop buffer_sizes."
        )


def include_size(config: dict[str, Any], i: int, inc: dict[str, Any]) -> str:
    """The size of ``include[i]``, a rehearsal method's cell: its ``buf<N>``, else the
    default."""
    size = inc.get("size") or default(config, inc["benchmark"], inc["scenario"], inc["method"])
    if not BUFFER.match(size):
        raise StudyError(
            f"study config: include[{i}].size = {size!r}: the size of rehearsal method "
            f"{inc['method']!r} is its buffer, buf<N> for buffer.size N (e.g. buf500)."
        )
    return size


def size_of(method: str, size: str) -> int | None:
    """``buffer.size`` of a rehearsal method's cell (from its ``buf<N>`` size), else None."""
    match = BUFFER.match(size) if catalog.is_rehearsal(method) else None
    return int(match.group(1)) if match else None
