"""What the MLflow mirror of a study still owes, said in one message.

A tracking store that is damaged, read-only or gone never fails a job or the study's results
(results files are the truth); each run it could not take is marked by ``mlflow_pending.json``
in its run directory, written by the live mirror of a job or by the study's sync step. At the
end of a study the Snakefile's ``onsuccess``/``onerror`` hooks call :func:`mirror_message` and
print its one paragraph: which store, why, and the fix (then ``hnet sync results/<study>``).
``hnet sync`` uses the same paragraph when it cannot finish.

Torch- and MLflow-free: the Snakefile imports it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hnet.tracking.store import PENDING

SYNC_RECORD = "mlflow_sync.json"  # the study's sync step: runs mirrored, skipped, pending


def pending_runs(run_dirs: Iterable[str | Path]) -> dict[Path, dict[str, Any]]:
    """Run dir → its ``mlflow_pending.json`` record, for the run dirs that have one."""
    out: dict[Path, dict[str, Any]] = {}
    for d in run_dirs:
        f = Path(d) / PENDING
        if f.exists():
            try:
                rec = json.loads(f.read_text())
                out[Path(d)] = rec if isinstance(rec, dict) else {}
            except (OSError, ValueError):
                out[Path(d)] = {}
    return out


def skipped_runs(sync_record: str | Path) -> dict[str, str]:
    """Run dirs the study's sync step skipped because their own files were unreadable."""
    try:
        return dict(json.loads(Path(sync_record).read_text()).get("skipped") or {})
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def short_reason(reason: str, uri: str) -> str:
    """The failure in a few words: what a connection failure amounts to, else the first line of
    the error without the store's address (the message names the store once)."""
    for needle, short in (
        ("Connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("Name or service not known", "unknown host"),
    ):
        if needle in reason:
            return f"{short}: nothing answered at {uri}"
    first = (reason.splitlines() or [""])[0].removeprefix("MirrorDown: ")
    first = first.replace(f" at {uri}", "")
    return first if len(first) <= 240 else first[:240] + "…"


def store_fix(uri: str, reason: str) -> str:
    """What to do about the store before ``hnet sync``, from its kind and the failure."""
    low = reason.lower()
    if uri.startswith(("http://", "https://")):
        return f"when the tracking server at {uri} answers again"
    if uri.startswith("sqlite:///"):
        db = uri.removeprefix("sqlite:///")
        if any(s in low for s in ("readonly", "read-only", "permission", "access")):
            return f"after making the database writable (`chmod u+w {db}` and its directory)"
        if any(s in low for s in ("not a database", "malformed", "corrupt", "disk image")):
            return (
                f"after moving the damaged database aside (`mv {db} {db}.broken`; a new one is "
                "created)"
            )
        return f"after repairing the database {db} (or moving it aside)"
    return f"after repairing the tracking store {uri}"


def mirror_message(
    study: str,
    study_dir: str | Path,
    run_dirs: Iterable[str | Path],
    uri: str,
    skipped: dict[str, str] | None = None,
) -> str | None:
    """One paragraph about the runs of a study MLflow is missing, or None if there are none.

    ``run_dirs``: the study's cells (finished or not); ``skipped``: run dir → why the sync step
    could not read its files (:func:`skipped_runs`).
    """
    dirs = [Path(d) for d in run_dirs]
    pending = pending_runs(dirs)
    skipped = skipped or {}
    if not pending and not skipped:
        return None
    parts = [f"hnet: the MLflow mirror of study {study!r} is incomplete."]
    if pending:
        first = next(iter(pending.values()))
        where = first.get("uri") or uri
        reason = short_reason(str(first.get("reason") or "unknown reason"), where)
        parts.append(
            f"{len(pending)} of {len(dirs)} runs are not in the tracking store {where} "
            f"({reason}). The results, tables and report do not depend on it. Run "
            f"`hnet sync {study_dir}` {store_fix(where, reason)}: it uploads what is missing "
            "and leaves runs already there alone."
        )
    if skipped:
        names = "; ".join(f"{d}/metrics.json ({why})" for d, why in sorted(skipped.items()))
        parts.append(
            f"{len(skipped)} finished run(s) were not mirrored because their files are "
            f"unreadable: {names}. Rerun the study: it moves each such file aside and the cell's "
            "job recomputes it from its final checkpoint (hnet.study.repair)."
        )
    return " ".join(parts)
