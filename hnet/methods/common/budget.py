"""The shared rehearsal buffer: one budget, ``buffer.size`` stored samples over all tasks.

Every rehearsal method (``Method.rehearsal``) reads the same key, so a study compares them at
equal memory and varies the budget of all of them with one axis (``buffer_sizes``,
docs/studies.md). A method that fills its buffer task by task, knowing the number of tasks in
advance, gives each task an equal share: :func:`quotas` splits ``size`` into ``n_tasks`` parts
that differ by at most one sample, the remainder going to the first tasks (deterministic, the
same for every seed). The default of 1000 keeps the per-task budgets this repository used before
the key existed: 200 per task on the five-task split benchmarks, 100 per task on the ten-task
permuted ones; the benchmark families that need another total say so in ``tuned/buffer.yaml``.

A budget that no task can fill is a mistake, not a request to store everything: :func:`check`
refuses a negative size and a quota larger than its task's training set, naming the largest
size that fits.
"""

from __future__ import annotations

from typing import Any

from hnet.errors import ConfigError


def quotas(size: int, n_tasks: int) -> list[int]:
    """Samples stored per task: ``size // n_tasks`` each, one more for the first
    ``size % n_tasks`` tasks (they sum to ``size``)."""
    base, extra = divmod(size, n_tasks)
    return [base + (1 if t < extra else 0) for t in range(n_tasks)]


def check_size(size: Any) -> None:
    """``buffer.size`` is an integer ≥ 0 (0: nothing stored, the method without rehearsal)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ConfigError(
            f"buffer.size must be an integer ≥ 0 (stored training samples over all tasks), "
            f"got {size!r}."
        )


def check(size: Any, task_sizes: list[int] | None, benchmark: str) -> None:
    """:func:`check_size`, and with the tasks' training-set sizes, that every task can fill its
    quota (a ConfigError naming the task, its quota and the largest size that fits)."""
    check_size(size)
    if not task_sizes:
        return
    n = len(task_sizes)
    for t, (q, have) in enumerate(zip(quotas(size, n), task_sizes, strict=True)):
        if q > have:
            raise ConfigError(
                f"buffer.size={size} is more than {benchmark} can fill: it gives task {t + 1} a "
                f"quota of {q} samples (buffer.size // {n} tasks, the remainder to the first "
                f"tasks), but that task has only {have} training samples. Use buffer.size ≤ "
                f"{largest_fitting(task_sizes)} (--set buffer.size=N)."
            )


def largest_fitting(task_sizes: list[int]) -> int:
    """The largest ``size`` whose :func:`quotas` every task can fill: each task gets the
    smallest task's size m, plus one for each leading task that has more than m (the
    remainder goes to the first tasks, and a task of size m cannot take one)."""
    m = min(task_sizes)
    lead = 0
    while lead < len(task_sizes) - 1 and task_sizes[lead] > m:
        lead += 1
    return len(task_sizes) * m + lead
