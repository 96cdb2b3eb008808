"""Shared look of the report's figures: fixed colours and markers per method (hnet sizes in
shades of blue, darker = larger hypernetwork), one :class:`Cell` (benchmark × scenario) with its
groups of runs and summary statistics, and helpers that size figures from their content so
labels never collide. Used by :mod:`hnet.report_figures` and :mod:`hnet.report_task_figures`.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hnet.models.sizes import NO_SIZE
from hnet.report.runs import REFERENCE, Runs

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
    "hnet_tir": "#56B4E9",
    "hnet_r": "#882255",
    "dgr_distill": "#999933",
    "joint": "#000000",
    "scratch": "#7F7F7F",
    "hnet_scratch": "#BDBDBD",
    "lwf": "#B8860B",
    "agem": "#17BECF",
    "icarl": "#9467BD",
    "derpp": "#2CA02C",
    "er_ace": "#AA4499",
    "gdumb": "#DDCC77",
    "hat": "#117733",
    "packnet": "#661100",
    "xdg": "#E7298A",
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
    "hnet_tir": "h",
    "hnet_r": "p",
    "dgr_distill": "d",
    "joint": "*",
    "scratch": ".",
    "hnet_scratch": "x",
    "lwf": "<",
    "agem": ">",
    "icarl": "H",
    "derpp": "8",
    "er_ace": "D",
    "gdumb": "s",
    "hat": "^",
    "packnet": "P",
    "xdg": "h",
}


def label(method: str, size: str) -> str:
    """Baselines by method name, hypernetworks as ``hnet (<size>)``."""
    return method if size == NO_SIZE else f"{method} ({size})"


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

    def not_applicable(self, g: Group, metric: str) -> str:
        """Why ``metric`` is not a number for the group ('' where it applies)."""
        return str(getattr(self.stats[g.method, g.size, metric], "not_applicable", "") or "")

    def matrices(self, g: Group) -> list[np.ndarray]:
        return [self.data.matrices[d] for d in g.runs["run_dir"]]


def make_cell(bench: str, scen: str, runs: pd.DataFrame, summary: pd.DataFrame, data: Runs):
    keys = runs.drop_duplicates(["method", "size"])[["method", "size"]].itertuples(index=False)
    keys = list(keys)
    # hnet's sizes in shades of blue; other hypernetwork methods (hnet_tir) keep one colour
    sizes = [s for m, s in keys if m == REFERENCE]
    cr = {
        r.size: r.mean
        for r in summary.itertuples()
        if r.metric == "compression_ratio" and r.method == REFERENCE
    }
    if all(np.isfinite(cr.get(s, math.nan)) for s in sizes):  # darker = bigger hypernetwork
        sizes.sort(key=lambda s: cr[s])
    blues = sns.blend_palette(["#9ECAE1", "#08306B"], len(sizes)) if len(sizes) > 1 else ["#0072B2"]
    # a method without a fixed colour gets one per method (all its sizes alike), never a repeat
    # of another unlisted method's until the extra colours run out
    unlisted = list(dict.fromkeys(m for m, _ in keys if m != REFERENCE and m not in METHOD_COLORS))
    extra = {m: EXTRA_COLORS[i % len(EXTRA_COLORS)] for i, m in enumerate(unlisted)}
    groups = []
    for m, s in keys:
        color = blues[sizes.index(s)] if m == REFERENCE else METHOD_COLORS.get(m) or extra[m]
        rows = runs[(runs["method"] == m) & (runs["size"] == s)]
        groups.append(Group(m, s, label(m, s), color, METHOD_MARKERS.get(m, "o"), rows))
    stats = {(r.method, r.size, r.metric): r for r in summary.itertuples()}
    regression = (runs["score"] == "neg_mse").any()
    units = ("score", "−MSE", "−MSE") if regression else ("accuracy", "%", "% points")
    return Cell(bench, scen, groups, stats, data, *units)


# -- drawing helpers --------------------------------------------------------------------------


def new_figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, paths: list[Path], dpi: int) -> None:
    """Save one figure in every format of ``paths`` (PNG, then SVG without a date). The
    constrained layout is solved by the first save and kept for the others instead of being
    solved again per format: it is the largest single cost of a study-sized report."""
    for i, path in enumerate(paths):
        fig.savefig(path, dpi=dpi, metadata={"Date": None} if path.suffix == ".svg" else None)
        if i == 0:
            fig.set_layout_engine("none")


def add_title(fig: Figure, cell: Cell, what: str, sub: str) -> None:
    """Title "benchmark / scenario: what" over a subtitle wrapped to the figure width."""
    chars = max(40, int(fig.get_figwidth() * 72 / (0.6 * 9)))
    text = f"{cell.bench} / {cell.scen}: {what}\n" + textwrap.fill(sub, chars)
    fig.suptitle(text, fontsize=10)


def draw_bars(ax, cell: Cell, groups: list[Group], metric: str, with_labels: bool = True) -> None:
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


def panel_grid(n: int, panel_w: float, panel_h: float, max_cols: int = 4, extra_w: float = 0.0):
    """A figure sized for n panels: the column count (3..max_cols) leaving fewest empty slots,
    then fewest rows."""
    choices = range(min(n, 3), min(n, max_cols) + 1)
    cols = min(choices, key=lambda c: (math.ceil(n / c) * c - n, math.ceil(n / c)))
    rows = math.ceil(n / cols)
    return cols, rows, new_figure(cols * panel_w + extra_w, rows * panel_h + 1.0)


def legend_right(ax) -> None:
    """Legend beside the axes (never over the data; constrained layout makes room for it)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, borderaxespad=0)


def task_axis(ax, T: int) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(T, 12)))
    ax.set_xlim(0.5, T + 0.5)


# -- the figure kinds (each returns a figure, or None and why not) ----------------------------
