"""A run directory is never trusted blindly: check it before a job reuses or resumes it.

:func:`inspect_run` reads, without changing anything, what a job would use: config.json,
metrics.json, the newest readable checkpoint (state/ckpt.pt, else state/ckpt.prev.pt, each
loaded whole) and the part of losses.jsonl that checkpoint covers. Every file that says which
config it belongs to (config.json, the config inside metrics.json, the config inside a
checkpoint) is compared with the job's config. :func:`prepare_run` then

- refuses a run of another config, also when config.json is gone and only metrics.json or the
  checkpoint tells: states of two configs are never mixed;
- reuses an intact result of this config;
- recovers exactly, moving whatever it replaces aside (``<name>.old-<time>``, never deleted): a
  damaged metrics.json is recomputed from the checkpoint, a damaged ckpt.pt gives way to
  ckpt.prev.pt, a damaged loss log is rewritten from the checkpoint's copy;
- refuses with one paragraph naming the file and ``--restart`` when no exact recovery exists,
  changing nothing.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hnet.config import identity_config
from hnet.errors import HnetError
from hnet.files import write_bytes, write_json
from hnet.rundir import CKPT, CKPT_PREV, CONFIG, LOSSES, METRICS, move_aside

RESTART = "pass --restart to move the run aside and start over"


@dataclass
class Inspection:
    """What :func:`inspect_run` found in a run directory."""

    changed: list[str] = field(default_factory=list)  # files of another config, and how
    damaged: dict[Path, str] = field(default_factory=dict)  # unreadable file → why
    result: dict[str, Any] | None = None  # an intact metrics.json of this config
    checkpoint: Path | None = None  # the newest intact checkpoint of this config
    log: bytes | None = None  # losses.jsonl as that checkpoint holds it, if the file differs
    stale_log: str | None = None  # a damaged log a (format 1) checkpoint cannot restore


def inspect_run(out: Path, cfg: dict[str, Any]) -> Inspection:
    """Check ``out`` against ``cfg`` (machine-only keys aside); changes nothing."""
    found = Inspection()
    if not out.is_dir():
        return found
    want = identity_config(cfg)

    def same(path: Path, old: dict[str, Any]) -> bool:
        have = identity_config(old)
        if have != want:
            keys = ", ".join(differing(have, want))
            found.changed.append(f"{path.relative_to(out)} differs in: {keys}")
        return have == want

    config = read_json(out / CONFIG, found)
    vouched = isinstance(config, dict) and same(out / CONFIG, config)
    result = read_json(out / METRICS, found)
    if result is not None and not isinstance(result, dict):
        found.damaged[out / METRICS] = f"{out / METRICS} is damaged (not a result)"
    elif isinstance(result, dict) and isinstance(result.get("config"), dict):
        if same(out / METRICS, result["config"]):
            found.result = result
    elif result is not None:  # no config inside: trusted only as far as config.json vouches
        if vouched:
            found.result = result
        else:
            found.changed.append(unvouched(out / METRICS, out))
    if found.result is not None or found.changed:
        return found  # finished (checkpoints are not needed), or refused anyway
    for path in (out / CKPT, out / CKPT_PREV):
        state = read_checkpoint(path, found)
        if state is None:
            continue
        if "config" in state:
            vouched = same(path, json.loads(state["config"]))
        elif not vouched:
            found.changed.append(unvouched(path, out))
        if vouched:
            found.checkpoint = path
            check_log(out, state, found)
        break
    return found


def unvouched(path: Path, out: Path) -> str:
    return (
        f"{path.relative_to(out)} holds no config (an older hnet wrote it) and no intact "
        "config.json vouches for it"
    )


def differing(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two configs."""
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += differing(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append(prefix + key)
    return out


def read_json(path: Path, found: Inspection) -> Any:
    """The JSON in ``path``; None (and noted as damaged) if it cannot be parsed."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        found.damaged[path] = f"{path} is damaged (not valid JSON: {e})"
        return None


def read_checkpoint(path: Path, found: Inspection) -> dict[str, Any] | None:
    from hnet.job.state import CheckpointDamaged, load

    try:
        return load(path, "cpu")
    except CheckpointDamaged as e:
        found.damaged[path] = str(e)
        return None


def check_log(out: Path, state: dict[str, Any], found: Inspection) -> None:
    """The loss log must hold, byte for byte, what it held when the checkpoint was written."""
    path, offset = out / LOSSES, state.get("log_offset", 0)
    data = path.read_bytes() if path.exists() else b""
    if "log" in state:
        copy = state["log"].numpy().tobytes()
        if data[:offset] != copy:
            found.log = copy
            if path.exists():
                found.damaged[path] = f"{path} does not match the copy in the checkpoint"
    elif not log_lines_ok(data, offset):
        found.stale_log = f"{path} is damaged (its first {offset} bytes are not the loss log)"


def log_lines_ok(data: bytes, offset: int) -> bool:
    """Format 1 checkpoints hold no copy: the covered part must at least be whole records."""
    if len(data) < offset or (offset and not data[:offset].endswith(b"\n")):
        return False
    try:
        records = [json.loads(line) for line in data[:offset].splitlines()]
    except ValueError:
        return False
    return all(isinstance(r, dict) and {"task", "step", "loss"} <= r.keys() for r in records)


def prepare_run(out: Path, cfg: dict[str, Any]) -> tuple[dict[str, Any] | None, Path | None]:
    """Check ``out`` and make it usable: ``(result, None)`` for a finished run of ``cfg``,
    ``(None, checkpoint)`` to resume from ``checkpoint`` (None: start afresh). Refuses (an
    :class:`HnetError`, nothing changed) a run of another config, or one that cannot be
    recovered exactly."""
    found = inspect_run(out, cfg)
    if found.changed:
        raise HnetError(
            f"{out} holds a run with a different config ({'; '.join(found.changed)}). "
            "Results are never mixed or overwritten: choose another --out, or pass --restart "
            "to move the old run aside and start over."
        )
    if found.result is not None:
        set_aside(found.damaged)
        if not (out / CONFIG).exists():
            write_json(out / CONFIG, found.result["config"])
        return found.result, None
    lost = [why for path, why in found.damaged.items() if path.name != CONFIG]
    if found.checkpoint is None and lost:
        raise HnetError(
            f"{out} cannot be used as it is: {'; '.join(lost)}; and no intact checkpoint of "
            f"this config is left to recover from. Nothing was moved or overwritten; {RESTART}."
        )
    if found.stale_log is not None:
        raise HnetError(
            f"{found.stale_log}, and its checkpoint {found.checkpoint} (written by an older "
            f"hnet) holds no copy to restore it from. Nothing was moved or overwritten; {RESTART}."
        )
    set_aside(found.damaged)
    if found.log is not None:
        write_bytes(out / LOSSES, found.log)
    return None, found.checkpoint


def set_aside(damaged: dict[Path, str]) -> None:
    for path, why in damaged.items():
        print(f"hnet: {why}", file=sys.stderr)
        move_aside(path, f"the damaged {path.name}")
