"""The three continual-learning scenarios and the one rule that follows from them: heads.

Nothing here imports torch: the study grid (parsed by Snakemake) and the job code both ask here.
"""

from __future__ import annotations

SCENARIOS = {
    "cl1": "task-incremental: task id given at test time, one head per task",
    "cl2": "domain-incremental: no task id, one shared head",
    "cl3": "class-incremental: no task id, must be inferred; heads of all tasks",
}


def n_heads(scenario: str, n_tasks: int) -> int:
    """Output heads of a target network: one shared head in CL2, one per task otherwise (CL3
    predicts over the heads of all tasks side by side)."""
    return 1 if scenario == "cl2" else n_tasks
