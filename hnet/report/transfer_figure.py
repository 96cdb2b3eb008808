"""The paper's Split CIFAR figure: per task, grouped bars of the hypernetwork's accuracy right
after learning the task and after the last task, next to the two controls that make its
forward-transfer claim: fine-tuning (right after learning: what sharing everything gains) and
training the task from scratch (what the task achieves alone), by a plain network (``scratch``)
and by a hypernetwork of the same size (``hnet_scratch``, the paper's control).

Drawn for any benchmark × scenario whose runs include a hypernetwork and at least one of the
controls (:func:`hnet.report.layout.figure_kinds_for` states the same rule without data).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from hnet.report.style import Cell, Group, add_title, legend_right, new_figure, task_axis
from hnet.report.task_figures import final_rows, mean_ci
from hnet.study.catalog import is_sized

CONTROLS = ("finetune", "scratch", "hnet_scratch")


def _series(cell: Cell) -> list[tuple[str, Group, np.ndarray, bool]]:
    """(label, group, seeds × T accuracies, hatched) per bar series, in drawing order."""
    out = []
    for g in cell.groups:
        if not is_sized(g.method) or g.method in CONTROLS:
            continue
        D, F = final_rows(cell, g, "during"), final_rows(cell, g, "final")
        if D is not None and F is not None:
            out += [(f"{g.label}, right after learning", g, D, True)]
            out += [(f"{g.label}, after the last task", g, F, False)]
    for method in CONTROLS:
        for g in cell.groups:
            if g.method == method and (D := final_rows(cell, g, "during")) is not None:
                what = "right after learning" if method == "finetune" else "the task alone"
                out.append((f"{g.label}, {what}", g, D, False))
    return out


def fig_transfer_per_task(cell: Cell) -> tuple[Figure | None, str]:
    series = _series(cell)
    has_hnet = any(is_sized(g.method) and g.method not in CONTROLS for _, g, _, _ in series)
    has_control = any(g.method in CONTROLS for _, g, _, _ in series)
    if not (has_hnet and has_control):
        return None, "needs hnet runs and finetune, scratch or hnet_scratch runs"
    T = max(X.shape[1] for _, _, X, _ in series)
    width = 0.8 / len(series)
    fig = new_figure(float(np.clip(0.25 * T * len(series) + 4.5, 7.0, 16.0)) + 2.5, 4.4)
    ax = fig.add_subplot()
    for k, (label, g, X, hatched) in enumerate(series):
        x = np.arange(1, X.shape[1] + 1) + (k - (len(series) - 1) / 2) * width
        mean, ci = mean_ci(X)
        style = {"color": "white", "edgecolor": g.color, "hatch": "///"} if hatched else {
            "color": g.color, "edgecolor": "black"}  # fmt: skip
        ax.bar(x, mean, width=width * 0.95, lw=0.6, label=label, **style)
        ok = np.isfinite(ci)
        ax.errorbar(x[ok], mean[ok], yerr=ci[ok], fmt="none", ecolor="black", capsize=2, lw=0.8)
    task_axis(ax, T)
    ax.set_xlabel("task (in training order)")
    ax.set_ylabel(f"{cell.noun} ({cell.unit})")
    if cell.unit == "%":
        lo = min(float(np.nanmin(X)) for _, _, X, _ in series)
        ax.set_ylim(max(0.0, 10 * np.floor(lo / 10) - 10), 101)
    legend_right(ax)
    add_title(
        fig,
        cell,
        f"{cell.noun} per task: hypernetwork against fine-tuning and training from scratch",
        "bars: mean over seeds; whiskers: 95 % CI. Above a task-alone bar = forward transfer "
        "(hnet_scratch: the paper's control); hatched vs solid hnet bar = forgetting.",
    )
    return fig, ""
