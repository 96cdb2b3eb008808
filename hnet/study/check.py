"""Resolve every cell of a study before any training job starts.

Parse-time checks (:mod:`hnet.study.grid`, :mod:`hnet.study.validate`) cover what needs no
torch and no data: names, pairs, seeds, resources, hparams keys and types against the catalog.
This step resolves each cell's job config exactly as ``hnet train`` will (the method's own
checks of its values) and builds every hypernetwork size against its benchmark (a compression
ratio unreachable on the benchmark's shapes fails here, not hours later in a job). It imports
torch and loads each benchmark's data once, so the workflow runs it as one local job, never
while parsing.
"""

from __future__ import annotations

import json
from typing import Any

from hnet.config import resolve
from hnet.data import load_benchmark
from hnet.errors import ConfigError
from hnet.methods.hnet import HNET
from hnet.scenarios import n_heads
from hnet.study.grid import Cell, StudyError, overrides, sized


def check_cells(config: dict[str, Any], cells: list[Cell]) -> None:
    """Resolve every cell's job config as ``hnet train`` will (hparams keys and types, method
    checks) and every hypernetwork size against its benchmark (unreachable compression ratios),
    loading each benchmark's data once. Tuning cells (sweeps) are checked with their swept values
    and validation split. Imports torch: the workflow runs it as one local job
    before any training job, never while parsing."""

    benches: dict[str, Any] = {}
    seen: set[str] = set()
    for cell in cells:
        ov = overrides(config, cell)
        key = json.dumps(
            [cell.benchmark, cell.scenario, cell.method, cell.size, ov], sort_keys=True
        )
        if key in seen:
            continue
        seen.add(key)
        where = (
            f"sweeps: tuning cell {cell.run_dir}" if cell.point else f"hparams of cell {cell.path}"
        )
        try:
            cfg = resolve(
                cell.benchmark,
                cell.method,
                cell.scenario,
                cell.seed,
                size=cell.size if sized(cell.method) else None,
                overrides=ov,
                device=config.get("device", "auto"),
            )
            if sized(cell.method):
                data_key = json.dumps([cell.benchmark, cfg["data"]], sort_keys=True)
                if data_key not in benches:
                    benches[data_key] = load_benchmark(cell.benchmark, dict(cfg["data"]), 0)
                bench = benches[data_key]
                where = f"sizes: {cell.size!r} for {cell.benchmark} {cell.scenario}"
                HNET.architecture(cfg, bench, n_heads(cell.scenario, bench.n_tasks))
        except ConfigError as e:
            raise StudyError(f"study config: {where}: {e}") from None
