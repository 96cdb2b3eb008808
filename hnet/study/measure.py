"""``hnet bench --for-study CONFIG``: measure what ``resources: auto`` needs before any cell ran.

For every benchmark × method × size of the study (the first of its cells: scenario and seed do
not change the cost much), one ``hnet bench --estimate`` process times the training steps of the
first and the last task and records start-up and peak memory; one process each, so one pair's
memory does not inflate the next pair's peak. The pair's entry in ``results/<study>/bench.json``
is its costliest size. :mod:`hnet.study.autores` reads the file when the Snakefile is parsed;
the study's own finished cells, once there are some, take precedence over it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hnet.errors import StudyError
from hnet.files import write_json
from hnet.study.autores import BENCH_FILE, auto_keys
from hnet.study.configfile import load_file
from hnet.study.grid import Cell, expand, resources, train_args


def representatives(config: dict[str, Any], cells: list[Cell]) -> list[Cell]:
    """The first cell of every benchmark × method × size whose benchmark has ``auto``
    resources (every one when none has: the user asked for a measurement)."""
    wanted = [c for c in cells if auto_keys(config, c.benchmark)] or cells
    seen: dict[tuple[str, str, str], Cell] = {}
    for c in wanted:
        seen.setdefault((c.benchmark, c.method, c.size), c)
    return list(seen.values())


def bench_study(path: str, results: str = "results", steps: int = 10, echo=print) -> Path:
    """Measure the study's pairs, write ``<results>/<study>/bench.json``, return its path."""
    config = load_file(path)
    cells = expand(config)
    out = Path(results) / config["study"]
    logs = out / "logs" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    pairs: dict[str, dict[str, Any]] = {}
    for cell in representatives(config, cells):
        threads = resources(config, cell.benchmark)["threads"]
        with tempfile.TemporaryDirectory() as tmp:
            est = Path(tmp) / "estimate.json"
            args = shlex.split(train_args(config, cell))
            cmd = [sys.executable, "-m", "hnet.cli", "bench", *args]
            cmd += ["--threads", str(threads), "--steps", str(steps), "--estimate", str(est)]
            log = logs / f"{cell.benchmark}-{cell.method}-{cell.size}.log"
            with open(log, "w") as f:
                done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=False)
            if done.returncode != 0:
                raise StudyError(
                    f"hnet bench --for-study: measuring {cell.path} failed (exit "
                    f"{done.returncode}); its output is in {log}."
                )
            e = json.loads(est.read_text())
        e.pop("config", None)
        key = f"{cell.benchmark}/{cell.method}"
        echo(
            f"{cell.path}: {e['seconds'] / 60:.1f} min ({e['steps']} steps, "
            f"{e['step_seconds_first'] * 1e3:.1f}–{e['step_seconds_last'] * 1e3:.1f} ms each, "
            f"start-up {e['startup_seconds'] or 0:.1f} s, evaluations {e['eval_seconds']:.1f} s), "
            f"peak {e['peak_rss_mb']:.0f} MB"
        )
        entry = {**e, "cell": cell.path, "threads": threads}
        if key not in pairs or entry["seconds"] > pairs[key]["seconds"]:
            pairs[key] = {**entry, "peak_rss_mb": max(e["peak_rss_mb"], _peak(pairs, key))}
        else:
            pairs[key]["peak_rss_mb"] = max(pairs[key]["peak_rss_mb"], e["peak_rss_mb"])
    target = out / BENCH_FILE
    write_json(target, {"written": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pairs": pairs})
    echo(f"wrote {target} ({len(pairs)} benchmark × method pairs)")
    return target


def _peak(pairs: dict[str, dict[str, Any]], key: str) -> float:
    return pairs[key]["peak_rss_mb"] if key in pairs else 0.0
