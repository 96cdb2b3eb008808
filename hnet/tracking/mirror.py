"""The live MLflow mirror of one run directory.

A tracking store that is down, slow or misconfigured must never fail or stall a job, so every
MLflow call goes through a retry helper and, if it still fails, the :class:`Mirror` switches
itself off and leaves ``mlflow_pending.json`` in the run dir; ``hnet sync RUN_DIR`` uploads the
run later from its files, idempotently.

Metric scheme (live logging and sync use the same one, so a sync re-writes identical rows):

    train_loss          step = steps of all earlier tasks + step (one continuous, monotone curve
                        over all tasks; task * train.iters + step when all tasks have
                        train.iters steps, hnet.steps.global_step)
    acc_task{j}         score on task j (1-based) at step i: 0 = before training (acc_init),
                        i = after training task i (row i of the matrix R, 1-based)
    ti_task{j}          task-inference accuracy on task j after task i (step i), when recorded
    memory_task_mb,     what the method keeps after task i (step i, 1-based): MB and exemplar
    memory_task_exemplars   equivalents (metrics.json ``memory.per_task``, hnet.job.memory)
    acc_final, bwt, …   every numeric scalar of metrics.json, at step 0

Every metric's timestamp is the run's start time + step (ms), not the wall clock: MLflow's SQL
store keys metric rows by (key, timestamp, step, value) and ignores an exact duplicate, so
re-logging from the files never adds rows (the UI's wall-time axis is therefore meaningless).

Use (the store is initialised once, before parallel jobs: ``store.init_store``)::

    with Mirror(uri, study, cfg, out_dir, tags={"grid": ...}) as mirror:
        run_job(cfg, out_dir, on_event=mirror.on_event)
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from hnet.config import identity_config, run_key
from hnet.errors import HnetError
from hnet.files import write_json
from hnet.steps import global_step
from hnet.tracking.plots import is_bad, plot_matrix, write_matrix_csv
from hnet.tracking.provenance import dataset_input, run_times, source_tags
from hnet.tracking.store import (
    KEY_TAG,
    PENDING,
    STATE_TAG,
    MirrorDown,
    client,
    ensure_experiment,
    flatten,
    http_limits,
)


class Mirror:
    """One MLflow run per job key, mirroring a run directory; see the module docstring.

    Outside ``strict`` mode no method raises: a failure after ``attempts`` tries (waits of
    ``backoff``·2^k s) switches the mirror off and writes ``run_dir/mlflow_pending.json``. Metrics
    are buffered and written with one ``log_batch`` per ``flush_every`` values or ``flush_seconds``
    (one ``log_metric`` costs ~2-25 ms on SQLite, a batched value ~0.2 ms).
    """

    def __init__(
        self,
        uri: str,
        experiment: str,
        cfg: dict[str, Any],
        run_dir: str | Path,
        tags: dict[str, Any] | None = None,
        enabled: bool = True,
        *,
        attempts: int = 3,
        backoff: float = 0.5,
        flush_every: int = 200,
        flush_seconds: float = 10.0,
        strict: bool = False,
        start_time: int | None = None,
    ) -> None:
        """``start_time`` (epoch ms): the start of a run created after the fact (``hnet sync``,
        from the run's files); a live run starts when its job does."""
        self.uri, self.experiment, self.cfg, self.run_dir = uri, experiment, cfg, Path(run_dir)
        self.tags, self.enabled, self.strict = dict(tags or {}), enabled, strict
        self.attempts, self.backoff = attempts, backoff
        self.flush_every, self.flush_seconds = flush_every, flush_seconds
        self.key, self.run_id, self.complete = run_key(cfg), None, False
        self.start_time = start_time
        self._client: Any = None
        self._buffer: list[Any] = []
        self._t0, self._last_flush = 0, time.monotonic()

    # -- failure handling -------------------------------------------------------------------
    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        for attempt in range(self.attempts):
            try:
                with http_limits(self.uri):
                    return fn(*args, **kwargs)
            except Exception as e:
                last = e
                if attempt + 1 < self.attempts:
                    time.sleep(self.backoff * 2**attempt)
        name = getattr(fn, "__name__", "call")
        raise MirrorDown(f"MLflow {name} failed {self.attempts}x at {self.uri}: {last}") from last

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Run a mirror step; on any failure switch off (or raise when strict)."""
        try:
            yield
        except Exception as e:
            if self.strict and isinstance(e, HnetError):
                raise
            if self.strict:
                raise MirrorDown(f"{type(e).__name__}: {e}") from e
            self.enabled, self._buffer = False, []
            reason = f"{type(e).__name__}: {e}"[:2000]
            when = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            info = {"uri": self.uri, "experiment": self.experiment, "reason": reason, "time": when}
            with contextlib.suppress(OSError):
                write_json(self.run_dir / PENDING, {**info, "run_key": self.key})
            print(
                f"hnet: MLflow mirror off for this job ({reason}). Results are written locally; "
                f"`hnet sync {self.run_dir}` uploads them later.",
                file=sys.stderr,
            )

    # -- run lifecycle ----------------------------------------------------------------------
    def start(self, status: str | None = "RUNNING") -> str | None:
        """Find the run by key and re-attach (setting ``status``), or create it; log tags and
        params (re-logging a param with the same value is a no-op in MLflow). Returns its id."""
        if not self.enabled:
            return None
        with self._guard():
            from mlflow.entities import Param, RunTag

            self._client = c = self._call(client, self.uri)
            exp_id = self._call(ensure_experiment, c, self.uri, self.experiment)
            flt = f"tags.`{KEY_TAG}` = '{self.key}'"
            found = self._call(c.search_runs, [exp_id], flt, order_by=["attributes.start_time"])
            cfg = self.cfg
            tags = run_tags(cfg, self.experiment, self.key, self.run_dir, self.tags)
            if found:
                run = found[0]
                if status:
                    self._call(c.update_run, run.info.run_id, status=status)
            else:
                name = "/".join(tags[k] for k in ("benchmark", "scenario", "method", "size"))
                run = self._call(
                    c.create_run,
                    exp_id,
                    start_time=self.start_time,
                    tags=tags,
                    run_name=f"{name}/seed{tags['seed']}",
                )
            self.run_id, self._t0 = run.info.run_id, run.info.start_time
            self.complete = run.data.tags.get(STATE_TAG) == "complete"
            self._batch("tags", [RunTag(k, v) for k, v in tags.items()], 100)
            self._batch(
                "params", [Param(k, v) for k, v in flatten(identity_config(cfg)).items()], 100
            )
        return self.run_id

    def _batch(self, kind: str, items: list[Any], size: int) -> None:
        """``log_batch`` in chunks within MLflow's limits (1000 metrics, 100 params + tags)."""
        for i in range(0, len(items), size):
            chunk = {kind: items[i : i + size]}
            self._call(self._client.log_batch, self.run_id, synchronous=True, **chunk)

    def _add(self, values: dict[str, Any], step: int) -> None:
        from mlflow.entities import Metric

        for k, v in values.items():
            if not is_bad(v):
                self._buffer.append(Metric(k, float(v), self._t0 + int(step), int(step)))

    def log_metrics(self, values: dict[str, Any], step: int) -> None:
        """Buffer metrics at ``step`` (timestamp = run start + step); None/NaN are skipped."""
        if self.enabled and self.run_id is not None:
            with self._guard():
                self._add(values, step)
            since = time.monotonic() - self._last_flush
            if len(self._buffer) >= self.flush_every or since >= self.flush_seconds:
                self.flush()

    def flush(self) -> None:
        """Write the buffered metrics with one ``log_batch`` (per 1000 values)."""
        self._last_flush = time.monotonic()
        if self.enabled and self._buffer:
            batch, self._buffer = self._buffer, []
            with self._guard():
                self._batch("metrics", batch, 1000)

    def log_artifacts(self, paths: Iterable[str | Path]) -> None:
        """Upload files to the run's artifact root (an existing path is overwritten)."""
        if self.enabled and self.run_id is not None:
            with self._guard():
                for p in paths:
                    self._call(self._client.log_artifact, self.run_id, str(p))

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        """Listener for ``run_job(on_event=...)``: live loss and matrix rows, final upload."""
        if not self.enabled:
            return
        with self._guard():
            if kind == "loss":
                gstep = global_step(self.cfg, data["task"], data["step"])
                self.log_metrics({"train_loss": data["loss"]}, gstep)
            elif kind == "row":
                acc = {f"acc_task{j + 1}": v for j, v in enumerate(data["scores"])}
                self.log_metrics(acc, data["task"] + 1)
                if data.get("memory") is not None:
                    self.log_metrics(memory_values(data["memory"]), data["task"] + 1)
                self.flush()
            elif kind == "done":
                self.upload()

    def upload(self) -> None:
        """Reconcile the run with the files (losses, matrices, final metrics, artifacts), then
        tag it ``hnet.mirror=complete`` and drop ``mlflow_pending.json``. Idempotent."""
        if not self.enabled or self.run_id is None:
            return
        with self._guard():
            res = json.loads((self.run_dir / "metrics.json").read_text())
            for values, step in metric_rows(self.run_dir, res, self.cfg):
                self._add(values, step)
            self.flush()
            with tempfile.TemporaryDirectory() as tmp:
                self.log_artifacts(artifacts(self.run_dir, res, Path(tmp)))
            if self.enabled:  # the data it trained on (logging the same input again is a no-op)
                self._call(self._client.log_inputs, self.run_id, [dataset_input(res, self.cfg)])
            if self.enabled:
                self._call(self._client.set_tag, self.run_id, STATE_TAG, "complete")
                self.complete = True
                (self.run_dir / PENDING).unlink(missing_ok=True)

    def finish(self, status: str = "FINISHED") -> None:
        """Flush; upload from the files if the job finished but was not reconciled yet (e.g. it
        had finished before and ``run_job`` returned early); mark the run terminated, at the
        time its training ended when it finished (metrics.json ``finished_at``), else now."""
        self.flush()
        done = (self.run_dir / "metrics.json").exists()
        if status == "FINISHED" and not self.complete and done:
            self.upload()
        if self.enabled and self.run_id is not None:
            with self._guard():
                end = None
                if status == "FINISHED" and done:
                    res = json.loads((self.run_dir / "metrics.json").read_text())
                    end = run_times(self.run_dir, res)[1]
                self._call(self._client.set_terminated, self.run_id, status, end_time=end)

    def __enter__(self) -> Mirror:
        self.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        stop = exc is not None and (
            getattr(exc, "exit_code", None) or exc_type is KeyboardInterrupt
        )
        self.finish("FINISHED" if exc is None else "KILLED" if stop else "FAILED")


def run_tags(
    cfg: dict[str, Any], experiment: str, key: str, run_dir: Path, extra: dict[str, Any]
) -> dict[str, str]:
    """The tags that find and describe a job's MLflow run (its key among them)."""
    tags = {k: str(cfg[k]) for k in ("benchmark", "scenario", "method", "size", "seed")}
    tags.update({f"hnet.{k}": str(cfg[k]) for k in ("device", "threads") if k in cfg})
    tags["study"] = experiment
    tags[KEY_TAG], tags["hnet.run_dir"] = key, str(run_dir.resolve())
    tags.update({k: str(v) for k, v in extra.items() if v is not None})
    if "mlflow.source.name" not in tags:  # a live run: the checkout this job runs from
        tags.update(source_tags())
    return tags


def metric_rows(
    run_dir: Path, res: dict[str, Any], cfg: dict[str, Any]
) -> Iterator[tuple[dict, int]]:
    """Every (values, step) of a finished run, from its files, in the module's metric scheme."""
    log = run_dir / "losses.jsonl"
    if log.exists():
        for line in log.read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                r = json.loads(line)
                yield {"train_loss": r["loss"]}, global_step(cfg, r["task"], r["step"])
    yield {f"acc_task{j + 1}": v for j, v in enumerate(res.get("acc_init", []))}, 0
    for prefix, key in (("acc_task", "acc_matrix"), ("ti_task", "task_inference_matrix")):
        for i, row in enumerate(res.get(key) or []):
            yield {f"{prefix}{j + 1}": v for j, v in enumerate(row)}, i + 1
    for i, rec in enumerate((res.get("memory") or {}).get("per_task") or []):
        if rec is not None:
            yield memory_values(rec), i + 1
    yield {k: v for k, v in res.items() if k != "seed"}, 0  # the scalars (others are skipped)


def memory_values(rec: dict[str, Any]) -> dict[str, float]:
    """The MLflow metrics of one task's memory record (metrics.json ``memory.per_task``)."""
    return {
        "memory_task_mb": rec["total_mb"],
        "memory_task_exemplars": rec["exemplar_equivalents"],
    }


def artifacts(run_dir: Path, res: dict[str, Any], tmp: Path) -> list[Path]:
    """The files uploaded with a finished run: its results, config and matrix as CSV and PNG."""
    write_matrix_csv(res["acc_matrix"], tmp / "acc_matrix.csv")
    title = f"{res.get('method')} on {res.get('benchmark')} ({res.get('scenario')})"
    unit = {"accuracy_percent": "accuracy (%)"}.get(res.get("score"), "score")
    plot_matrix(res["acc_matrix"], tmp / "acc_matrix.png", title, unit)
    files = [run_dir / "metrics.json", run_dir / "config.json", *sorted(tmp.iterdir())]
    return [p for p in files if p.exists()]
