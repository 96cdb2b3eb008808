"""Per-task figures of ``hnet report``: mean accuracy matrices, every task's accuracy after the
last task (the long-sequence plot), right-after-learning vs final per task, and a PCA of the
learned task embeddings."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from hnet.report.style import (
    HALO,
    Cell,
    Group,
    add_title,
    legend_right,
    new_figure,
    panel_grid,
    task_axis,
)
from hnet.report.tables import mean_std_ci
from hnet.study.catalog import is_sized
from hnet.tracking.plots import draw_matrix

MAX_ANNOTATED = 12  # tasks up to which matrix cells carry their value


def fig_matrices(cell: Cell) -> tuple[Figure | None, str]:
    panels = []
    for g in cell.groups:
        mats = cell.matrices(g)
        if len({m.shape for m in mats}) == 1:
            panels.append((g, np.mean(mats, axis=0)))
    if not panels:
        return None, "the runs of every group differ in the number of tasks"
    T = max(len(M) for _, M in panels)
    annotate = T <= MAX_ANNOTATED
    side = float(np.clip(0.3 * T + 1.4, 2.7, 4.8)) if annotate else 3.4
    cols, rows, fig = panel_grid(len(panels), side, side + 0.35, extra_w=1.2)
    finite = np.concatenate([M[np.isfinite(M)] for _, M in panels])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (None, None)
    font = float(np.clip(18 * side / T, 5.0, 8.0))
    im = None
    axes = []
    for k, (g, M) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, k + 1)
        axes.append(ax)
        im = draw_matrix(ax, M, vmin, vmax, MAX_ANNOTATED, fontsize=font, max_ticks=10)
        n = len(g.runs)
        note = ", diagonal only" if g.method == "scratch" else ""
        ax.set_title(f"{g.label}\n{n} seed{'s' * (n > 1)}{note}", fontsize=9)
    fig.colorbar(
        im, ax=axes, shrink=min(0.9, 0.5 + 0.15 * rows), label=f"{cell.noun} ({cell.unit})"
    )
    fig.supxlabel("evaluated on task j", fontsize=9)
    fig.supylabel("after training task i", fontsize=9)
    add_title(
        fig,
        cell,
        f"mean {cell.noun} matrices",
        "cell (i, j): score on task j after training task i, mean over seeds; shared colour scale",
    )
    return fig, ""


def final_rows(cell: Cell, g: Group, which: str) -> np.ndarray | None:
    """Per run: the last row of R (``final``) or its diagonal (``during``), as seeds × T."""
    mats = cell.matrices(g)
    if len({m.shape for m in mats}) != 1:
        return None
    return np.array([M[-1] if which == "final" else np.diag(M) for M in mats])


def mean_ci(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    stats = [mean_std_ci(X[:, j]) for j in range(X.shape[1])]
    return np.array([s[1] for s in stats]), np.array([s[3] for s in stats])


def fig_final_per_task(cell: Cell) -> tuple[Figure | None, str]:
    lines = [(g, X) for g in cell.learners() if (X := final_rows(cell, g, "final")) is not None]
    if not lines:
        return None, "no runs of a method other than scratch"
    T = max(X.shape[1] for _, X in lines)
    fig = new_figure(float(np.clip(0.22 * T + 5.5, 7.0, 15.0)) + 2.2, 4.6)
    ax = fig.add_subplot()
    for g, X in lines:
        x = np.arange(1, X.shape[1] + 1)
        mean, ci = mean_ci(X)
        ax.plot(
            x,
            mean,
            color=g.color,
            marker=g.marker if T <= 30 else None,
            ms=5,
            lw=1.4,
            label=g.label,
        )
        ok = np.isfinite(ci)
        if ok.any():
            lo, hi = mean - ci, mean + ci
            if cell.unit == "%":  # a t-interval over few seeds can leave [0, 100]; accuracy can't
                lo, hi = np.clip(lo, 0.0, 100.0), np.clip(hi, 0.0, 100.0)
            ax.fill_between(x, lo, hi, where=ok, color=g.color, alpha=0.12, lw=0)
    for g in cell.groups:
        if g.method == "scratch" and (X := final_rows(cell, g, "during")) is not None:
            x = np.arange(1, X.shape[1] + 1)
            ax.plot(x, mean_ci(X)[0], color="0.35", ls=":", lw=1.6, label="scratch (task alone)")
    task_axis(ax, T)
    if cell.unit == "%":
        ax.set_ylim(-3, 103)
    ax.set_xlabel("task (in training order)")
    ax.set_ylabel(f"{cell.noun} after the last task ({cell.unit})")
    legend_right(ax)
    add_title(
        fig,
        cell,
        f"{cell.noun} on every task after training the last one",
        "lines: mean over seeds; bands: 95 % CI; dotted: each task trained alone (scratch)",
    )
    return fig, ""


def fig_during_vs_final(cell: Cell) -> tuple[Figure | None, str]:
    panels = []
    for g in cell.learners():
        D, F = final_rows(cell, g, "during"), final_rows(cell, g, "final")
        if D is not None and F is not None:
            panels.append((g, D.mean(axis=0), F.mean(axis=0)))
    if not panels:
        return None, "no runs of a method other than scratch"
    T = max(len(d) for _, d, _ in panels)
    pw = float(np.clip(0.12 * T + 2.6, 3.0, 6.0))
    cols, rows, fig = panel_grid(len(panels), pw, 2.5)
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
    for ax, (g, d, f) in zip(axes, panels, strict=False):
        x = np.arange(1, len(d) + 1)
        ax.fill_between(x, f, d, where=d > f, color="#D55E00", alpha=0.25, lw=0, interpolate=True)
        ax.fill_between(x, f, d, where=f > d, color="#009E73", alpha=0.25, lw=0, interpolate=True)
        mk = T <= 30
        ax.plot(x, d, color="0.45", ls="--", lw=1.1, marker="o" if mk else None, ms=4, mfc="white")
        ax.plot(x, f, color=g.color, lw=1.6, marker="s" if mk else None, ms=4)
        ax.set_title(g.label, fontsize=9)
        task_axis(ax, T)
    for k, ax in enumerate(axes):
        if k >= len(panels):
            ax.set_visible(False)
        elif k + cols >= len(panels):  # lowest panel of its column: give it the x axis
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel("task j (in training order)")
    handles = [
        Line2D(
            [],
            [],
            color="0.45",
            ls="--",
            marker="o",
            mfc="white",
            label="right after learning it (R[j,j])",
        ),
        Line2D([], [], color="black", marker="s", label="after the last task (R[T,j])"),
        Patch(color="#D55E00", alpha=0.4, label="lost by the end"),
        Patch(color="#009E73", alpha=0.4, label="gained by the end"),
    ]
    fig.legend(
        handles=handles, loc="outside lower center", ncols=4 if cols >= 3 else 2, frameon=False
    )
    fig.supylabel(f"{cell.noun} ({cell.unit})", fontsize=9)
    add_title(
        fig,
        cell,
        f"{cell.noun} right after learning each task vs at the end",
        "mean over seeds; one panel per method and size",
    )
    return fig, ""


def pca2(E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First two principal components of the rows of E (numpy SVD, signs fixed so the largest
    loading is positive): coordinates T×2 and explained-variance fractions (2,)."""
    X = E - E.mean(axis=0)
    U, S, Vt = np.linalg.svd(X, full_matrices=False)
    signs = np.sign(Vt[np.arange(len(Vt)), np.argmax(np.abs(Vt), axis=1)])
    signs[signs == 0] = 1
    coords = (U * S * signs)[:, :2]
    var = S**2 / (S**2).sum() if (S**2).sum() > 0 else np.zeros_like(S)
    pad = 2 - coords.shape[1]
    return np.pad(coords, ((0, 0), (0, pad))), np.pad(var[:2], (0, pad))


def fig_embeddings(cell: Cell) -> tuple[Figure | None, str]:
    panels = []
    for g in cell.groups:
        if not is_sized(g.method):
            continue
        have = [
            (r.seed, r.run_dir) for r in g.runs.itertuples() if r.run_dir in cell.data.embeddings
        ]
        if have:
            seed, run_dir = min(have)
            E = cell.data.embeddings[run_dir]
            if len(E) >= 2:
                panels.append((g, seed, E))
    if not panels:
        return None, "no hnet runs with task_embeddings (and at least 2 tasks)"
    cols, rows, fig = panel_grid(len(panels), 4.0, 3.7, max_cols=3, extra_w=1.0)
    T = max(len(E) for _, _, E in panels)
    every = max(1, math.ceil(T / 12))  # ~12 task numbers per panel stay readable
    axes, sc = [], None
    for k, (g, seed, E) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, k + 1)
        axes.append(ax)
        P, var = pca2(E)
        t = np.arange(1, len(E) + 1)
        ax.plot(P[:, 0], P[:, 1], color="0.75", lw=0.8, zorder=1)
        sc = ax.scatter(
            P[:, 0],
            P[:, 1],
            c=t,
            cmap="viridis",
            vmin=1,
            vmax=T,
            s=36,
            edgecolor="black",
            lw=0.4,
            zorder=2,
        )
        for i in sorted({*range(0, len(E), every), len(E) - 1}):
            ax.annotate(
                str(i + 1),
                P[i],
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=7,
                zorder=4,
                path_effects=HALO,  # readable over neighbouring points
            )
        ax.set_xlabel(f"PC1 ({100 * var[0]:.3g} % of variance)")
        ax.set_ylabel(f"PC2 ({100 * var[1]:.3g} % of variance)")
        ax.set_title(f"{g.label}, seed {seed} ({E.shape[1]}-d)", fontsize=9)
        ax.margins(0.12)
    cbar = fig.colorbar(sc, ax=axes, label="task (training order)", shrink=0.8)
    cbar.locator = MaxNLocator(integer=True)
    cbar.update_ticks()
    add_title(
        fig,
        cell,
        "learned task embeddings, PCA",
        "each point is one task's embedding; grey line: training order",
    )
    return fig, ""
