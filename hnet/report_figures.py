"""Figures of ``hnet report``: one file per kind × benchmark × scenario (hnet.report_layout).

Each figure shows one benchmark × scenario, so a reader (or Snakemake's HTML report) can put the
same kind side by side across benchmarks. Colours are fixed per method (hnet sizes in shades of
blue, light = smallest in report order) so a method looks the same in every figure. Figures are
drawn on Agg canvases without pyplot state, and are sized from the number of bars, panels and
tasks so that labels never collide; the SVG hash salt and the missing date keep files identical
across runs.

Scratch runs train every task alone, so only their diagonal means something: they are left out
of the after-the-last-task figures and drawn as a reference where a diagonal is compared.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator

from hnet.plots import draw_matrix
from hnet.report import Runs
from hnet.report_layout import FIGURE_EXTS, FIGURE_KINDS, figure_dir, figure_path
from hnet.report_tables import mean_std_ci

RC = {
    **sns.axes_style("whitegrid"),
    **sns.plotting_context("notebook", font_scale=0.8),
    "svg.hashsalt": "hnet-report",  # stable SVG ids
    "axes.titlesize": 10,
    "figure.titlesize": 11,
}
DPI = 120
HALO = [patheffects.withStroke(linewidth=2.5, foreground="white")]
#: fixed colours per baseline (Okabe–Ito based, colour-blind safe); hnet sizes are blues
METHOD_COLORS = {
    "finetune": "#E69F00",
    "ewc": "#009E73",
    "online_ewc": "#6A3D9A",
    "si": "#CC79A7",
    "mas": "#8C564B",
    "replay": "#D55E00",
    "joint": "#000000",
    "scratch": "#7F7F7F",
}
EXTRA_COLORS = ("#B8860B", "#17BECF", "#BCBD22", "#E377C2", "#2CA02C", "#9467BD")
METHOD_MARKERS = {
    "hnet": "o",
    "finetune": "v",
    "ewc": "s",
    "online_ewc": "D",
    "si": "^",
    "mas": "P",
    "replay": "X",
    "joint": "*",
    "scratch": ".",
}


def label(method: str, size: str) -> str:
    """Baselines by method name, hypernetworks as ``hnet (<size>)``."""
    return method if size == "-" else f"{method} ({size})"


@dataclass
class Group:
    method: str
    size: str
    label: str
    color: tuple | str
    marker: str
    runs: pd.DataFrame


@dataclass
class Cell:
    """Everything one benchmark × scenario's figures need."""

    bench: str
    scen: str
    groups: list[Group]
    stats: dict[tuple[str, str, str], object]  # (method, size, metric) → summary row
    data: Runs
    noun: str  # "accuracy" or "score"
    unit: str  # "%" or "−MSE"
    diff_unit: str  # unit of differences of scores

    def learners(self) -> list[Group]:
        """Groups whose after-the-last-task results mean something (not scratch)."""
        return [g for g in self.groups if g.method != "scratch"]

    def stat(self, g: Group, metric: str) -> tuple[float, float]:
        r = self.stats[g.method, g.size, metric]
        return float(r.mean), float(r.ci95)

    def matrices(self, g: Group) -> list[np.ndarray]:
        return [self.data.matrices[d] for d in g.runs["run_dir"]]


def make_cell(bench: str, scen: str, runs: pd.DataFrame, summary: pd.DataFrame, data: Runs):
    keys = runs.drop_duplicates(["method", "size"])[["method", "size"]].itertuples(index=False)
    keys = list(keys)
    sizes = [s for m, s in keys if m == "hnet"]
    cr = {r.size: r.mean for r in summary.itertuples() if r.metric == "compression_ratio"}
    if all(np.isfinite(cr.get(s, math.nan)) for s in sizes):  # darker = bigger hypernetwork
        sizes.sort(key=lambda s: cr[s])
    blues = sns.blend_palette(["#9ECAE1", "#08306B"], len(sizes)) if len(sizes) > 1 else ["#0072B2"]
    extra = iter(EXTRA_COLORS * 4)
    groups = []
    for m, s in keys:
        color = blues[sizes.index(s)] if m == "hnet" else METHOD_COLORS.get(m) or next(extra)
        rows = runs[(runs["method"] == m) & (runs["size"] == s)]
        groups.append(Group(m, s, label(m, s), color, METHOD_MARKERS.get(m, "o"), rows))
    stats = {(r.method, r.size, r.metric): r for r in summary.itertuples()}
    regression = (runs["score"] == "neg_mse").any()
    units = ("score", "−MSE", "−MSE") if regression else ("accuracy", "%", "% points")
    return Cell(bench, scen, groups, stats, data, *units)


# -- drawing helpers --------------------------------------------------------------------------


def _figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _title(fig: Figure, cell: Cell, what: str, sub: str) -> None:
    """Title "benchmark / scenario: what" over a subtitle wrapped to the figure width."""
    chars = max(40, int(fig.get_figwidth() * 72 / (0.6 * 9)))
    text = f"{cell.bench} / {cell.scen}: {what}\n" + textwrap.fill(sub, chars)
    fig.suptitle(text, fontsize=10)


def _bars(ax, cell: Cell, groups: list[Group], metric: str, with_labels: bool = True) -> None:
    """Horizontal bars (mean), 95 % CI whiskers and one dot per seed; first group on top."""
    for i, g in enumerate(groups):
        mean, ci = cell.stat(g, metric)
        if not np.isfinite(mean):
            continue
        ax.barh(i, mean, height=0.7, color=g.color, alpha=0.85, edgecolor="black", lw=0.5)
        if np.isfinite(ci):
            ax.errorbar(mean, i, xerr=ci, fmt="none", ecolor="black", capsize=3, lw=1)
        pts = g.runs[metric].dropna().to_numpy()
        jitter = np.linspace(-0.15, 0.15, len(pts)) if len(pts) > 1 else np.zeros(len(pts))
        ax.scatter(pts, i + jitter, s=9, color="white", edgecolor="black", lw=0.6, zorder=3)
    if with_labels:  # panels sharing y with a labelled one keep its ticks, just hide them
        ax.set_yticks(range(len(groups)), [g.label for g in groups])
        ax.set_ylim(len(groups) - 0.5, -0.5)
    else:
        ax.tick_params(labelleft=False)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.grid(axis="y", visible=False)


def _panels(n: int, panel_w: float, panel_h: float, max_cols: int = 4, extra_w: float = 0.0):
    """A figure sized for n panels: the column count (3..max_cols) leaving fewest empty slots,
    then fewest rows."""
    choices = range(min(n, 3), min(n, max_cols) + 1)
    cols = min(choices, key=lambda c: (math.ceil(n / c) * c - n, math.ceil(n / c)))
    rows = math.ceil(n / cols)
    return cols, rows, _figure(cols * panel_w + extra_w, rows * panel_h + 1.0)


def _legend_right(ax) -> None:
    """Legend beside the axes (never over the data; constrained layout makes room for it)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, borderaxespad=0)


def _task_axis(ax, T: int) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(T, 12)))
    ax.set_xlim(0.5, T + 0.5)


# -- the figure kinds (each returns a figure, or None and why not) ----------------------------


def fig_acc_final(cell: Cell) -> tuple[Figure | None, str]:
    groups = [g for g in cell.learners() if np.isfinite(cell.stat(g, "acc_final")[0])]
    if not groups:
        return None, "no finite acc_final of a method other than scratch"
    fig = _figure(7.5, 1.6 + 0.34 * len(groups))
    ax = fig.add_subplot()
    _bars(ax, cell, groups, "acc_final")
    ax.set_xlabel(f"final {cell.noun} ({cell.unit}), mean over all tasks after the last one")
    _title(fig, cell, f"final {cell.noun}", "bars: mean over seeds; whiskers: 95 % CI; dots: seeds")
    return fig, ""


FORGETTING_PANELS = (
    ("bwt", "BWT (higher is better)"),
    ("forgetting", "forgetting (lower is better)"),
    ("fwt", "FWT (higher is better)"),
)


def fig_forgetting(cell: Cell) -> tuple[Figure | None, str]:
    metrics = [m for m, _ in FORGETTING_PANELS]
    groups = [g for g in cell.learners() if any(np.isfinite(cell.stat(g, m)[0]) for m in metrics)]
    if not groups:
        return None, "no finite BWT, forgetting or FWT (needs at least 2 tasks)"
    fig = _figure(12.5, 1.8 + 0.34 * len(groups))
    axes = fig.subplots(1, 3, sharey=True)
    for k, (ax, (metric, title)) in enumerate(zip(axes, FORGETTING_PANELS, strict=True)):
        _bars(ax, cell, groups, metric, with_labels=k == 0)
        ax.set_title(title)
        ax.set_xlabel(f"{metric.upper() if metric != 'forgetting' else metric} ({cell.diff_unit})")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    _title(
        fig,
        cell,
        "backward transfer, forgetting, forward transfer",
        "BWT = final − right-after-learning score; forgetting = best earlier − final score; "
        "FWT = score just before training a task − untrained score. Bars: mean over seeds; "
        "whiskers: 95 % CI; dots: seeds.",
    )
    return fig, ""


def fig_compression(cell: Cell) -> tuple[Figure | None, str]:
    hn = [
        g
        for g in cell.groups
        if g.method == "hnet"
        and np.isfinite(cell.stat(g, "compression_ratio")[0])
        and np.isfinite(cell.stat(g, "acc_final")[0])
    ]
    if len(hn) < 2:
        return None, "needs 2 or more hnet sizes with a compression ratio"
    fig = _figure(8.5, 4.6)
    ax = fig.add_subplot()
    hn.sort(key=lambda g: cell.stat(g, "compression_ratio")[0])
    pts = [(cell.stat(g, "compression_ratio")[0], g) for g in hn]
    x = [p for p, _ in pts]
    y = [cell.stat(g, "acc_final")[0] for g in hn]
    ax.plot(x, y, color="#08306B", lw=1.2, zorder=2, label="hnet (sizes)")
    for cr, g in pts:
        mean, ci = cell.stat(g, "acc_final")
        ax.errorbar(
            cr,
            mean,
            yerr=ci if np.isfinite(ci) else None,
            fmt="o",
            ms=7,
            capsize=3,
            color=g.color,
            mec="black",
            ecolor="black",
            zorder=3,
        )
        ax.annotate(
            g.size,
            (cr, mean),
            xytext=(7, 6),
            textcoords="offset points",
            fontsize=8,
            zorder=4,
            path_effects=HALO,
        )
    for g in cell.learners():
        if g.method == "hnet":
            continue
        mean, ci = cell.stat(g, "acc_final")
        if np.isfinite(mean):
            ax.axhline(mean, ls="--", lw=1.3, color=g.color, label=g.label, zorder=1)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    lo, hi = min(x), max(x)
    ax.set_xlim(lo / 1.6, hi * 1.6)
    ax.set_xlabel("compression ratio: hnet parameters / target-network parameters (log scale)")
    ax.set_ylabel(f"final {cell.noun} ({cell.unit})")
    _legend_right(ax)
    _title(
        fig,
        cell,
        f"final {cell.noun} vs hypernetwork compression",
        "points: mean over seeds per hnet size; whiskers: 95 % CI; dashed lines: mean of the "
        "other methods",
    )
    return fig, ""


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
    cols, rows, fig = _panels(len(panels), side, side + 0.35, extra_w=1.2)
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
    _title(
        fig,
        cell,
        f"mean {cell.noun} matrices",
        "cell (i, j): score on task j after training task i, mean over seeds; shared colour scale",
    )
    return fig, ""


def _final_rows(cell: Cell, g: Group, which: str) -> np.ndarray | None:
    """Per run: the last row of R (``final``) or its diagonal (``during``), as seeds × T."""
    mats = cell.matrices(g)
    if len({m.shape for m in mats}) != 1:
        return None
    return np.array([M[-1] if which == "final" else np.diag(M) for M in mats])


def _mean_ci(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    stats = [mean_std_ci(X[:, j]) for j in range(X.shape[1])]
    return np.array([s[1] for s in stats]), np.array([s[3] for s in stats])


def fig_final_per_task(cell: Cell) -> tuple[Figure | None, str]:
    lines = [(g, X) for g in cell.learners() if (X := _final_rows(cell, g, "final")) is not None]
    if not lines:
        return None, "no runs of a method other than scratch"
    T = max(X.shape[1] for _, X in lines)
    fig = _figure(float(np.clip(0.22 * T + 5.5, 7.0, 15.0)) + 2.2, 4.6)
    ax = fig.add_subplot()
    for g, X in lines:
        x = np.arange(1, X.shape[1] + 1)
        mean, ci = _mean_ci(X)
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
            ax.fill_between(x, mean - ci, mean + ci, where=ok, color=g.color, alpha=0.12, lw=0)
    for g in cell.groups:
        if g.method == "scratch" and (X := _final_rows(cell, g, "during")) is not None:
            x = np.arange(1, X.shape[1] + 1)
            ax.plot(x, _mean_ci(X)[0], color="0.35", ls=":", lw=1.6, label="scratch (task alone)")
    _task_axis(ax, T)
    ax.set_xlabel("task (in training order)")
    ax.set_ylabel(f"{cell.noun} after the last task ({cell.unit})")
    _legend_right(ax)
    _title(
        fig,
        cell,
        f"{cell.noun} on every task after training the last one",
        "lines: mean over seeds; bands: 95 % CI; dotted: each task trained alone (scratch)",
    )
    return fig, ""


def fig_during_vs_final(cell: Cell) -> tuple[Figure | None, str]:
    panels = []
    for g in cell.learners():
        D, F = _final_rows(cell, g, "during"), _final_rows(cell, g, "final")
        if D is not None and F is not None:
            panels.append((g, D.mean(axis=0), F.mean(axis=0)))
    if not panels:
        return None, "no runs of a method other than scratch"
    T = max(len(d) for _, d, _ in panels)
    pw = float(np.clip(0.12 * T + 2.6, 3.0, 6.0))
    cols, rows, fig = _panels(len(panels), pw, 2.5)
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
    for ax, (g, d, f) in zip(axes, panels, strict=False):
        x = np.arange(1, len(d) + 1)
        ax.fill_between(x, f, d, where=d > f, color="#D55E00", alpha=0.25, lw=0, interpolate=True)
        ax.fill_between(x, f, d, where=f > d, color="#009E73", alpha=0.25, lw=0, interpolate=True)
        mk = T <= 30
        ax.plot(x, d, color="0.45", ls="--", lw=1.1, marker="o" if mk else None, ms=4, mfc="white")
        ax.plot(x, f, color=g.color, lw=1.6, marker="s" if mk else None, ms=4)
        ax.set_title(g.label, fontsize=9)
        _task_axis(ax, T)
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
    _title(
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
        if g.method != "hnet":
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
    cols, rows, fig = _panels(len(panels), 4.0, 3.7, max_cols=3, extra_w=1.0)
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
    _title(
        fig,
        cell,
        "learned task embeddings, PCA",
        "each point is one task's embedding; grey line: training order",
    )
    return fig, ""


DRAW: dict[str, Callable[[Cell], tuple[Figure | None, str]]] = {
    "acc_final": fig_acc_final,
    "forgetting": fig_forgetting,
    "compression": fig_compression,
    "matrices": fig_matrices,
    "final_per_task": fig_final_per_task,
    "during_vs_final": fig_during_vs_final,
    "embeddings": fig_embeddings,
}
assert list(DRAW) == list(FIGURE_KINDS), "hnet.report_layout lists the kinds in display order"


def all_figures(runs: Runs, summary: pd.DataFrame, out: Path) -> tuple[list[Path], list[str]]:
    """Every kind for every benchmark × scenario into ``out/figures/<kind>/``; files there that
    this call did not write (earlier reports) are deleted. Returns (files, notes)."""
    written: list[Path] = []
    skipped: dict[tuple[str, str], list[str]] = {}
    for kind in FIGURE_KINDS:
        (out / figure_dir(kind)).mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(RC):
        for (bench, scen), g in runs.table.groupby(["benchmark", "scenario"], sort=False):
            s = summary[(summary["benchmark"] == bench) & (summary["scenario"] == scen)]
            cell = make_cell(bench, scen, g, s, runs)
            for kind, draw in DRAW.items():
                fig, why = draw(cell)
                if fig is None:
                    skipped.setdefault((kind, why), []).append(f"{bench}/{scen}")
                    continue
                for ext in FIGURE_EXTS:
                    path = out / figure_path(kind, bench, scen, ext)
                    fig.savefig(path, dpi=DPI, metadata={"Date": None} if ext == "svg" else None)
                    written.append(path)
    remove_stale(out, written)
    notes = [
        f"no figures/{kind} for {', '.join(where)}: {why}" for (kind, why), where in skipped.items()
    ]
    return written, notes


def remove_stale(out: Path, written: list[Path]) -> list[Path]:
    """Delete files in the kind directories not written now, and figures of the old flat
    layout (``figures/*.png|svg``), so the figures reflect exactly the current runs."""
    keep = {p.resolve() for p in written}
    stale = [f for ext in FIGURE_EXTS for f in (out / "figures").glob(f"*.{ext}")]
    for kind in FIGURE_KINDS:
        stale += [f for f in (out / figure_dir(kind)).iterdir() if f.resolve() not in keep]
    removed = []
    for f in sorted(stale):
        if f.is_file() or f.is_symlink():
            f.unlink()
            removed.append(f)
    return removed
