"""Continual-learning metrics: pure functions of stored score matrices, and the metric table.

``METRICS`` is the one home of every reported metric's name, label, direction and whether the
report summarizes it; the CLI, the report's tables and figures and the MLflow mirror read it.
docs/metrics.md explains each formula.

Inputs (lists or numpy arrays; nothing here imports torch):

- ``R``: T×T score matrix. In code ``R[i, j]`` (0-based) is the score on task ``j`` measured right
  after training task ``i``. The docstrings use the paper convention, 1-based: ``R[i, j]`` with
  ``i, j ∈ 1..T``, so code index ``k`` is paper index ``k + 1``.
- ``b``: length-T vector, ``b[j]`` = score on task ``j`` before any training (for a hypernetwork:
  with the untrained embedding).
- ``r_scratch``: length-T vector, ``r_scratch[j]`` = score on task ``j`` of a network trained on
  task ``j`` alone (the diagonal of the from-scratch run's matrix; a matrix is accepted and its
  diagonal taken).

Where a metric's definition does not hold for a scenario it is not a number but ``None`` with a
reason: :func:`not_applicable` (FWT in CL1 and CL3, docs/metrics.md) is the one rule; jobs record
its reasons in metrics.json (``not_applicable``) and the report shows "n/a" with them.

Scores are assumed higher-is-better (accuracies); the results are in the same unit as the inputs
(fractions stay fractions, percentages stay percentages). Metrics that are undefined for a single
task (``bwt``, ``fwt``, ``forgetting`` when T == 1) return ``None`` rather than NaN, so they
serialise to JSON ``null``. Every function returns plain Python floats, never numpy scalars.

The names are explicit because libraries disagree (one library's "forgetting" is first-minus-last,
another's BWT averages the whole lower triangle); the formulas below are the definitions.

References:
    Lopez-Paz & Ranzato, "Gradient Episodic Memory for Continual Learning", NeurIPS 2017.
    Chaudhry et al., "Riemannian Walk for Incremental Learning: Understanding Forgetting and
    Intransigence", ECCV 2018.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ArrayLike = Sequence | np.ndarray

__all__ = [
    "FWT_NOT_APPLICABLE",
    "METRICS",
    "TRANSFER_CONTROLS",
    "Metric",
    "acc_during",
    "acc_final",
    "all_metrics",
    "bwt",
    "forgetting",
    "fwt",
    "not_applicable",
    "transfer_vs_scratch",
    "validation_metrics",
]


def _matrix(R: ArrayLike) -> np.ndarray:
    """Return ``R`` as a finite, square, non-empty 2-D float array, or raise ValueError."""
    try:
        arr = np.asarray(R, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"R must be a square 2-D numeric matrix: {exc}") from exc
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise ValueError(
            f"R must be a non-empty square T×T matrix (R[i, j] = score on task j after training "
            f"task i), got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(
            "R contains NaN or inf: metrics need a full matrix (every task trained and every "
            "task evaluated after each one)"
        )
    return arr


def _vector(v: ArrayLike, T: int, name: str) -> np.ndarray:
    """Return ``v`` as a finite length-T float vector, or raise ValueError."""
    try:
        arr = np.asarray(v, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric vector of length {T}: {exc}") from exc
    if arr.ndim != 1 or arr.shape[0] != T:
        raise ValueError(f"{name} must be a vector of length T={T}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _scratch(r_scratch: ArrayLike, T: int) -> np.ndarray:
    """Accept the from-scratch diagonal as a vector, or a T×T matrix whose diagonal is taken."""
    arr = np.asarray(r_scratch, dtype=float)
    if arr.ndim == 2:
        if arr.shape != (T, T):
            raise ValueError(
                f"r_scratch given as a matrix must be T×T with T={T}, got shape {arr.shape}"
            )
        arr = np.diag(arr)
    return _vector(arr, T, "r_scratch")


def acc_final(R: ArrayLike) -> float:
    """Average score over all tasks after training the last task.

    acc_final = (1/T) · Σ_{j=1..T} R[T, j]

    (the "ACC" of Lopez-Paz & Ranzato 2017.)
    """
    m = _matrix(R)
    return float(np.mean(m[-1, :]))


def acc_during(R: ArrayLike) -> float:
    """Average score on each task right after learning it.

    acc_during = (1/T) · Σ_{j=1..T} R[j, j]

    (the "during" accuracy reported by von Oswald et al. 2020; the diagonal of R.)
    """
    m = _matrix(R)
    return float(np.mean(np.diag(m)))


def bwt(R: ArrayLike) -> float | None:
    """Backward transfer; negative values mean forgetting (Lopez-Paz & Ranzato 2017).

    bwt = (1/(T−1)) · Σ_{j=1..T−1} (R[T, j] − R[j, j])

    Only the last row is compared with the diagonal (not the whole lower triangle).
    Returns ``None`` when T == 1 (no earlier task).
    """
    m = _matrix(R)
    T = m.shape[0]
    if T < 2:
        return None
    j = np.arange(T - 1)
    return float(np.mean(m[-1, j] - m[j, j]))


def fwt(R: ArrayLike, b: ArrayLike) -> float | None:
    """Forward transfer: score on a task just before training it, minus its untrained score.

    fwt = (1/(T−1)) · Σ_{j=2..T} (R[j−1, j] − b[j])

    (Lopez-Paz & Ranzato 2017.) Returns ``None`` when T == 1.
    """
    m = _matrix(R)
    T = m.shape[0]
    bv = _vector(b, T, "b")
    if T < 2:
        return None
    j = np.arange(1, T)
    return float(np.mean(m[j - 1, j] - bv[j]))


def forgetting(R: ArrayLike) -> float | None:
    """Average forgetting: best score a task ever had minus its final score (Chaudhry et al. 2018).

    forgetting = (1/(T−1)) · Σ_{j=1..T−1} ( max_{l∈{j, …, T−1}} R[l, j] − R[T, j] )

    The max runs from the row where task j was learned up to the one before the last, so
    forgetting ≥ −bwt always (the max includes l = j). Returns ``None`` when T == 1.
    """
    m = _matrix(R)
    T = m.shape[0]
    if T < 2:
        return None
    per_task = [np.max(m[j : T - 1, j]) - m[-1, j] for j in range(T - 1)]
    return float(np.mean(per_task))


def transfer_vs_scratch(R: ArrayLike, r_scratch: ArrayLike) -> float:
    """Score right after learning each task, relative to training that task from scratch.

    transfer_vs_scratch = (1/T) · Σ_{j=1..T} (R[j, j] − R_scratch[j])

    where R_scratch[j] is the score of a model trained on task j alone: the control's run, a
    plain network (``scratch``) or a hypernetwork of the same size (``hnet_scratch``), whose
    metric names are :data:`TRANSFER_CONTROLS`. ``r_scratch`` may be that vector or the control
    run's T×T matrix (its diagonal is used).
    """
    m = _matrix(R)
    s = _scratch(r_scratch, m.shape[0])
    return float(np.mean(np.diag(m) - s))


#: the from-scratch controls of transfer: control method → the metric measured against it.
#: ``scratch``: a plain network of the target's architecture trained on each task alone (every
#: method); ``hnet_scratch``: a fresh hypernetwork of the same size trained on each task alone,
#: the paper's control (methods with a size, i.e. a hypernetwork classifier; matched by size).
TRANSFER_CONTROLS: dict[str, str] = {
    "scratch": "transfer_vs_scratch",
    "hnet_scratch": "transfer_vs_hnet_scratch",
}

#: Scenarios in which FWT's definition does not hold, and why (docs/metrics.md). FWT reads
#: R[j−1, j] as what learning tasks < j does for task j before it is trained; it holds in CL2 only,
#: where every method answers a not-yet-trained task with parameters trained on earlier tasks and
#: without its identity.
FWT_NOT_APPLICABLE: dict[str, str] = {
    "cl1": (
        "CL1: a task not yet trained is answered by its own untrained output head (hypernetworks: "
        "weights from its untrained embedding), a random readout whose accuracy is chance in "
        "expectation whatever the earlier tasks taught; R[j−1, j] − b[j] is not transfer"
    ),
    "cl3": (
        "CL3: a task not yet trained has classes no method has learned; baselines score them "
        "only because its identity widens the candidate classes (R[j−1, j] ≈ 0, so FWT is −b "
        "for every method), hypernetworks never predict them (FWT = 0 by construction)"
    ),
}


def not_applicable(scenario: str, validation: bool = False) -> dict[str, str]:
    """The metrics whose definition does not hold in ``scenario`` → why (``val_fwt`` too with
    ``validation``); they are ``None`` in metrics.json and "n/a" in the report."""
    reason = FWT_NOT_APPLICABLE.get(scenario)
    if reason is None:
        return {}
    return {"fwt": reason} | ({VAL_PREFIX + "fwt": reason} if validation else {})


def all_metrics(
    R: ArrayLike,
    b: ArrayLike,
    r_scratch: ArrayLike | None = None,
    scenario: str | None = None,
) -> dict[str, float | None]:
    """All §5 metrics of one run as a JSON-serialisable dict.

    Keys: ``acc_final``, ``acc_during``, ``bwt``, ``fwt``, ``forgetting``, and
    ``transfer_vs_scratch`` only when ``r_scratch`` is given. Values are Python floats, or
    ``None`` for metrics undefined at T == 1 and, given the ``scenario``, for those whose
    definition does not hold in it (:func:`not_applicable`). Requires a full T×T matrix
    (ValueError otherwise).
    """
    m = _matrix(R)
    bv = _vector(b, m.shape[0], "b")
    out: dict[str, float | None] = {
        "acc_final": acc_final(m),
        "acc_during": acc_during(m),
        "bwt": bwt(m),
        "fwt": fwt(m, bv),
        "forgetting": forgetting(m),
    }
    if r_scratch is not None:
        out["transfer_vs_scratch"] = transfer_vs_scratch(m, r_scratch)
    for name in not_applicable(scenario) if scenario is not None else {}:
        out[name] = None
    return out


@dataclass(frozen=True)
class Metric:
    """A reported number: ``direction`` +1 higher is better, −1 lower is better, 0 unranked;
    ``summarized``: the report aggregates it over seeds; ``printed``: ``hnet train`` prints it."""

    name: str
    label: str
    direction: int
    summarized: bool = True
    printed: bool = True


METRICS: tuple[Metric, ...] = (
    Metric("acc_final", "ACC final", 1),
    # next to the accuracy it explains: methods that infer the task in CL2/CL3 (ENT, TIR)
    Metric("task_inference_final", "task inference", 1),
    Metric("acc_during", "ACC during", 1),
    Metric("bwt", "BWT", 1),
    Metric("fwt", "FWT", 1),
    Metric("forgetting", "forgetting", -1),
    # against each from-scratch control (TRANSFER_CONTROLS); the label names the control
    Metric("transfer_vs_scratch", "transfer vs scratch", 1, printed=False),
    Metric("transfer_vs_hnet_scratch", "transfer vs hnet_scratch", 1, printed=False),
    Metric("compression_ratio", "compression", 0),
    # what the method keeps beyond its network after the last task (hnet.job.memory)
    Metric("memory_mb", "memory MB", 0),
    Metric("memory_exemplars", "memory (exemplars)", 0),
    Metric("n_params_hnet", "hnet params", 0, summarized=False, printed=False),
    Metric("n_params_target", "target params", 0, summarized=False, printed=False),
    Metric("train_seconds", "train s", -1),
)


# -- validation metrics ---------------------------------------------------------------------------
# A job whose benchmark holds out a validation split (data.val_fraction > 0) scores every task on
# it too, into a second matrix V (metrics.json: val_acc_matrix, val_acc_init). The same formulas
# applied to V give the val_* metrics: the only numbers a study's hyperparameter selection may
# rank, so that choosing a value never looks at the test set.

VAL_PREFIX = "val_"
#: the metrics of the validation matrix, named ``val_<metric>``, with the direction of ``<metric>``
VALIDATION_METRICS: tuple[Metric, ...] = tuple(
    Metric(VAL_PREFIX + m.name, f"val. {m.label}", m.direction, summarized=False, printed=False)
    for m in METRICS
    if m.name in ("acc_final", "acc_during", "bwt", "fwt", "forgetting")
)


def validation_metrics(
    V: ArrayLike, bv: ArrayLike, scenario: str | None = None
) -> dict[str, float | None]:
    """``val_acc_final``, ``val_acc_during``, ``val_bwt``, ``val_fwt``, ``val_forgetting``: the
    formulas of :func:`all_metrics` on the validation matrix ``V`` and untrained scores ``bv``
    (``None`` where the ``scenario`` makes one not applicable)."""
    return {VAL_PREFIX + k: v for k, v in all_metrics(V, bv, scenario=scenario).items()}
