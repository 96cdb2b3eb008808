"""What a rerun of a study repairs that Snakemake cannot see, decided while the Snakefile parses.

Snakemake decides from file times whether a job must run. Two kinds of damage leave the times
as they were, so a rerun used to train nothing, exit 0 and leave the damage in place:

- a cell's ``metrics.json`` damaged after it was written (truncated by a full disk, a broken
  copy): the file exists and is newer than its inputs, so Snakemake keeps it and the report
  lists the cell as missing. :func:`damaged_results` finds such files; the workflow then runs
  the cell's job again, and ``hnet train`` recomputes the file from the cell's final checkpoint
  without a training step (:mod:`hnet.job.integrity`), or retrains the cell when no checkpoint
  is left;
- the study's SQLite MLflow store deleted or moved aside (the fix a damage message names): the
  store is no declared output, so nothing reruns. :func:`missing_store` notices it
  (as long as the study's tracking destination file says the study had one); the workflow
  moves the sync step's record aside, so the sync step runs again and rebuilds the store from the
  run directories, one run per cell (runs are found by their key, never duplicated).

Each repair is said in one line on stderr. Torch- and MLflow-free: the Snakefile imports it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

SQLITE = "sqlite:///"


def result_damage(path: Path) -> str | None:
    """Why the ``metrics.json`` at ``path`` is no usable result, or None (also when it does not
    exist: a missing file is Snakemake's business). The test is the one every reader of results
    needs: a JSON object with a score matrix."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:  # JSONDecodeError, UnicodeDecodeError, unreadable
        return f"not valid JSON ({type(e).__name__}: {str(e)[:120]})"
    if not isinstance(data, dict) or not isinstance(data.get("acc_matrix"), list):
        return "no result in it (not a JSON object with an acc_matrix)"
    return None


def damaged_results(paths: Iterable[str | Path]) -> dict[str, str]:
    """``metrics.json`` path → why it is damaged, for the paths that exist and are damaged."""
    found = {}
    for p in paths:
        why = result_damage(Path(p))
        if why is not None:
            found[str(p)] = why
    return found


def damage_message(damaged: dict[str, str]) -> str:
    """One paragraph about the damaged results a rerun repairs."""
    names = "; ".join(f"{p} ({why})" for p, why in sorted(damaged.items()))
    return (
        f"hnet: {len(damaged)} finished cell(s) have a damaged metrics.json: {names}. Each is "
        "moved aside (metrics.json.old-<time>) and its job runs again: it recomputes "
        "metrics.json from the cell's final checkpoint without training (or retrains the cell "
        "if no checkpoint is left)."
    )


def store_path(uri: str) -> Path | None:
    """The database file of a local SQLite tracking URI, None for any other store."""
    return Path(uri.removeprefix(SQLITE)) if uri.startswith(SQLITE) else None


def missing_store(uri: str, destination: str | Path) -> Path | None:
    """The study's local SQLite store when it is gone although the study created it before
    (its tracking destination file ``destination``, written by ``mlflow_init``, exists);
    None when there is nothing to rebuild."""
    db = store_path(uri)
    if db is None or db.exists() or not Path(destination).exists():
        return None
    return db


def store_message(study: str, db: Path, finished: int) -> str:
    """One line about the store a rerun rebuilds."""
    return (
        f"hnet: the MLflow store {db} of study {study!r} is gone (deleted or moved aside); "
        f"the study's MLflow sync step runs again and rebuilds it from the {finished} finished "
        "run directories, one MLflow run per cell."
    )
