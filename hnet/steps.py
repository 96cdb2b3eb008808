"""How many optimizer steps each task gets, and one step axis over all tasks.

The one home of the rule, below the methods and the config layer, so that a method whose
schedule depends on a task's length (PackNet prunes at a fraction of it) reads it as the
training loop does. ``train.iters_per_task`` is derived by :mod:`hnet.config` when
``train.epochs`` > 0 (tasks of different sizes get different step counts); otherwise every task
runs ``train.iters`` steps (configs written before the key existed have only that).
"""

from __future__ import annotations

from typing import Any


def task_iters(cfg: dict[str, Any], n_tasks: int) -> list[int]:
    """Optimizer steps of every task: ``train.iters_per_task`` if derived, else ``train.iters``
    each."""
    per = cfg["train"].get("iters_per_task")
    return list(per) if per else [cfg["train"]["iters"]] * n_tasks


def steps_of(cfg: dict[str, Any], task: int) -> int:
    """Optimizer steps of ``task`` (0-based)."""
    per = cfg["train"].get("iters_per_task")
    return per[task] if per else cfg["train"]["iters"]


def global_step(cfg: dict[str, Any], task: int, step: int) -> int:
    """One step axis over all tasks (MLflow's ``train_loss``): the steps of earlier tasks plus
    ``step``; monotone when tasks differ in length."""
    per = cfg["train"].get("iters_per_task")
    if not per:
        return task * cfg["train"]["iters"] + step
    return sum(per[:task]) + step
