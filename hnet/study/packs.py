"""Packed seeds in a study (``pack_seeds: K``): which cells share one training job.

Final cells that differ only in their seed, of a method that can train several seeds in one
process (:func:`hnet.study.catalog.is_packable`), are grouped in packs of up to K seeds in seed
order; each pack of two or more is one Snakemake job that declares every seed's metrics.json and
runs ``hnet train --seeds a,b,… --out '…/seed{seed}'``. Every seed keeps its own run directory,
so a study's results, report and MLflow runs look the same packed or not. Cells of swept methods
(whose values come from the tuning stage) and tuning cells are never packed.
"""

from __future__ import annotations

import itertools
import shlex
from typing import Any

from hnet.study import catalog
from hnet.study.grid import Cell, swept, train_args


def packs(config: dict[str, Any], cells: list[Cell]) -> list[list[Cell]]:
    """The packs of two or more final cells (each in seed order); cells in no pack train alone."""
    k = int(config.get("pack_seeds", 1))
    if k < 2:
        return []
    candidates = sorted(
        (
            c
            for c in cells
            if not c.point and catalog.is_packable(c.method) and not swept(config, c)
        ),
        key=lambda c: (c.group, c.seed),
    )
    out = []
    for _, group in itertools.groupby(candidates, key=lambda c: c.group):
        seeds = list(group)
        out += [seeds[i : i + k] for i in range(0, len(seeds), k) if len(seeds[i : i + k]) > 1]
    return out


def pack_args(config: dict[str, Any], pack: list[Cell]) -> str:
    """``hnet train`` arguments of a pack: its first cell's, with ``--seeds`` for ``--seed``."""
    args = shlex.split(train_args(config, pack[0]))
    i = args.index("--seed")
    args[i : i + 2] = ["--seeds", ",".join(str(c.seed) for c in pack)]
    return shlex.join(args)


def pack_name(pack: list[Cell]) -> str:
    """A rule name for the pack (Snakemake rule names are identifiers)."""
    c, last = pack[0], pack[-1].seed
    raw = f"train_pack_{c.benchmark}_{c.scenario}_{c.method}_{c.size}_seeds_{c.seed}_{last}"
    return "".join(ch if ch.isalnum() else "_" for ch in raw)
