"""``resources: auto``: a training job's runtime and memory from measurements, not from guesses.

A benchmark's ``runtime`` and/or ``mem_mb`` set to ``auto`` (or the whole entry:
``resources: {split_fmnist: auto}``) are computed per benchmark × method, when the Snakefile is
parsed, from the first of:

1. **the study's own finished cells** of that benchmark and method (final or tuning, any
   scenario and size): the longest cell's time (``process_seconds``, or ``train_seconds`` plus
   start-up when it was resumed) and the largest peak memory (``peak_rss_mb``) in their
   metrics.json; at most :data:`SAMPLE` cells per pair are read, so parsing stays fast;
2. **a bench file**, ``results/<study>/bench.json``, written by ``hnet bench --for-study
   CONFIG``: per pair, one cell's measured start-up, training steps timed at the first and the
   last task (a whole cell's training = steps per task × tasks at step times interpolated
   between the two, as hnet's grows about linearly with the earlier tasks), one task's scoring
   times the (n + 1) · n scores of a job, and its peak memory;
3. **nothing yet**: the benchmark's fixed numbers below ``auto`` (``resources.default``, else
   the built-in 60 minutes and 2000 MB), said once when the Snakefile is parsed.

What a job asks for: ``runtime = max(min_runtime, ceil(safety × seconds / 60))`` minutes and
``mem_mb = max(min_mem_mb, safety × peak MB rounded up to 100 MB)``, with ``cluster.auto``'s
``safety`` (default 1.5), ``min_runtime`` (5 minutes) and ``min_mem_mb`` (1000). ``snakemake
-n`` shows each job's values. Torch-free (parse time); the bench file is written by
:mod:`hnet.study.measure`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AUTO = "auto"
KEYS = ("runtime", "mem_mb")  # the resources ``auto`` applies to
BUILTIN = {"threads": 1, "mem_mb": 2000, "runtime": 60, "gpu": 0}
DEFAULTS = {"safety": 1.5, "min_runtime": 5, "min_mem_mb": 1000}
BENCH_FILE = "bench.json"  # results/<study>/bench.json (hnet bench --for-study)
SAMPLE = 20  # finished cells read per benchmark × method


@dataclass(frozen=True)
class Measurement:
    seconds: float  # one cell, start to end
    peak_mb: float  # its peak resident memory
    source: str  # where the numbers come from, for the parse-time line


def settings(config: dict[str, Any]) -> dict[str, float]:
    """``cluster.auto`` with its defaults."""
    return {**DEFAULTS, **((config.get("cluster") or {}).get("auto") or {})}


def entry(config: dict[str, Any], name: str) -> dict[str, Any]:
    """``resources.<name>`` as a mapping (``auto`` alone means both runtime and mem_mb)."""
    value = (config.get("resources") or {}).get(name) or {}
    return dict.fromkeys(KEYS, AUTO) if value == AUTO else dict(value)


def fixed(config: dict[str, Any], benchmark: str) -> dict[str, Any]:
    """built-in < resources.default < resources.<benchmark>; values may be ``auto``."""
    return {**BUILTIN, **entry(config, "default"), **entry(config, benchmark)}


def auto_keys(config: dict[str, Any], benchmark: str) -> list[str]:
    res = fixed(config, benchmark)
    return [k for k in KEYS if res[k] == AUTO]


def fallback(config: dict[str, Any], benchmark: str, key: str) -> int:
    """What ``key`` asks for while there is no measurement: the first number below ``auto``
    (``resources.default``, else built-in)."""
    for layer in (entry(config, benchmark), entry(config, "default"), BUILTIN):
        if isinstance(layer.get(key), int):
            return int(layer[key])
    return BUILTIN[key]


def ask(measured: Measurement, config: dict[str, Any]) -> dict[str, int]:
    """The runtime (minutes) and mem_mb a job asks for, from one measurement."""
    s = settings(config)
    runtime = max(int(s["min_runtime"]), math.ceil(s["safety"] * measured.seconds / 60))
    mem = max(int(s["min_mem_mb"]), 100 * math.ceil(s["safety"] * measured.peak_mb / 100))
    return {"runtime": runtime, "mem_mb": mem}


def cell_cost(result: dict[str, Any]) -> tuple[float, float] | None:
    """(seconds, peak MB) of one finished cell from its metrics.json; None if it lacks them. A
    resumed cell's process time covers only its last attempt, so its training time plus
    start-up counts too."""
    try:
        seconds = max(
            float(result["process_seconds"]),
            float(result["train_seconds"]) + float(result.get("startup_seconds") or 0),
        )
        return seconds, float(result["peak_rss_mb"])
    except (KeyError, TypeError, ValueError):
        return None


def from_cells(out: Path, cells: list[Any]) -> Measurement | None:
    """The costliest of (up to :data:`SAMPLE`) finished ``cells`` (of one benchmark × method)."""
    costs = []
    for cell in cells:
        path = out / cell.run_dir / "metrics.json"
        if not path.exists():
            continue
        try:
            cost = cell_cost(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # damaged: the rerun repairs it; it measures nothing
        if cost is not None:
            costs.append(cost)
        if len(costs) >= SAMPLE:
            break
    if not costs:
        return None
    n = len(costs)
    return Measurement(
        max(c[0] for c in costs),
        max(c[1] for c in costs),
        f"{n} finished cell{'s' if n > 1 else ''}",
    )


def from_bench(out: Path, benchmark: str, method: str) -> Measurement | None:
    """The pair's entry of ``results/<study>/bench.json`` (``hnet bench --for-study``)."""
    path = out / BENCH_FILE
    try:
        pairs = json.loads(path.read_text())["pairs"]
        e = pairs[f"{benchmark}/{method}"]
        return Measurement(float(e["seconds"]), float(e["peak_rss_mb"]), f"{BENCH_FILE}")
    except (OSError, ValueError, KeyError, TypeError):
        return None


class AutoResources:
    """Per benchmark × method, measured once (lazily: a cluster job re-parsing the Snakefile
    reads only its own pairs) and asked for by every job of the pair."""

    def __init__(self, config: dict[str, Any], out: str | Path, cells: list[Any]) -> None:
        self.config = config
        self.out = Path(out)
        self.cells: dict[tuple[str, str], list[Any]] = {}
        for c in cells:
            self.cells.setdefault((c.benchmark, c.method), []).append(c)
        self.cache: dict[tuple[str, str], Measurement | None] = {}

    def measurement(self, benchmark: str, method: str) -> Measurement | None:
        key = (benchmark, method)
        if key not in self.cache:
            self.cache[key] = from_cells(self.out, self.cells.get(key, [])) or from_bench(
                self.out, benchmark, method
            )
        return self.cache[key]

    def value(self, benchmark: str, method: str, key: str) -> int:
        """``key`` (runtime or mem_mb) of a job of this pair: measured, else the fallback."""
        res = fixed(self.config, benchmark)
        if res[key] != AUTO:
            return int(res[key])
        m = self.measurement(benchmark, method)
        return ask(m, self.config)[key] if m else fallback(self.config, benchmark, key)

    def lines(self) -> list[str]:
        """One line per pair with auto resources: what its jobs ask for, and from what."""
        out = []
        for b, m in sorted(self.cells):
            keys = auto_keys(self.config, b)
            if not keys:
                continue
            got = self.measurement(b, m)
            asks = ", ".join(f"{k} {self.value(b, m, k)}" for k in keys)
            if got is None:
                out.append(
                    f"hnet: resources auto: {b} × {m}: no measurement yet, asking the fixed "
                    f"{asks} (run `hnet bench --for-study <config>`, or let a first cell finish)"
                )
            else:
                s = settings(self.config)
                out.append(
                    f"hnet: resources auto: {b} × {m}: {asks} (from {got.source}: "
                    f"{got.seconds / 60:.1f} min, {got.peak_mb:.0f} MB; × {s['safety']:g})"
                )
        return out
