"""Final accuracy against memory: what each method achieves for what it keeps.

Methods are only comparable at equal memory (:mod:`hnet.job.memory`): a hypernetwork keeps an
embedding and regularizer targets per task, a replay method stored images, EWC a Fisher matrix.
One figure per benchmark × scenario: x = memory after the last task in exemplar equivalents
(bytes / bytes of one stored training input, log scale), y = final accuracy. A method run at
several sizes (hnet at each hypernetwork size, a rehearsal method at each buffer size) is one
line through its sizes in order of memory; every other method is a single point. Methods that
keep nothing (fine-tuning) sit on a separate "0" tick at the left edge, since a log axis has no
zero.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator

from hnet.report.style import HALO, Cell, Group, add_title, legend_right, new_figure

X, Y = "memory_exemplars", "acc_final"


def _points(cell: Cell) -> dict[str, list[tuple[float, float, float, Group]]]:
    """method → [(memory, accuracy mean, accuracy 95 % CI, group)], in order of memory."""
    out: dict[str, list[tuple[float, float, float, Group]]] = {}
    for g in cell.learners():
        x = cell.stat(g, X)[0]
        y, ci = cell.stat(g, Y)
        if np.isfinite(x) and np.isfinite(y):
            out.setdefault(g.method, []).append((x, y, ci, g))
    return {m: sorted(p, key=lambda t: t[0]) for m, p in out.items()}


def _spread(points: dict[str, list[tuple]], zero: float) -> dict[tuple[str, int], float]:
    """(method, index) → a factor that spreads points of equal memory sideways (rehearsal methods
    at one buffer size keep the same bytes), ±0.03 decades apart, so none hides another."""
    at: dict[float, list[tuple[str, int]]] = {}
    for method, pts in points.items():
        for i, (x, *_) in enumerate(pts):
            at.setdefault(round(math.log10(max(x, zero)), 2), []).append((method, i))
    factor = {}
    for keys in at.values():
        for k, key in enumerate(keys):
            factor[key] = 10 ** (0.03 * (k - (len(keys) - 1) / 2))
    return factor


def fig_memory(cell: Cell) -> tuple[Figure | None, str]:
    points = _points(cell)
    if not points:
        return None, "no run with both acc_final and a memory record"
    kept = [x for pts in points.values() for x, *_ in pts if x > 0]
    lo, hi = (min(kept), max(kept)) if kept else (1.0, 1.0)
    zero = 10 ** (math.floor(math.log10(lo)) - 1)  # where "keeps nothing" is drawn
    fig = new_figure(9.0, 5.0)
    ax = fig.add_subplot()
    spread = _spread(points, zero)
    for method, pts in points.items():
        xs = [max(x, zero) * spread[(method, i)] for i, (x, *_) in enumerate(pts)]
        ys = [y for _, y, _, _ in pts]
        several = len(pts) > 1
        one_colour = len({str(g.color) for *_, g in pts}) == 1  # a buffer axis: one entry
        if several:  # one method at several sizes: a line through them
            ax.plot(xs, ys, color=pts[-1][3].color, lw=1.3, zorder=2)
        for i, (xv, (_, y, ci, g)) in enumerate(zip(xs, pts, strict=True)):
            name = g.label if not (several and one_colour) else method if i == 0 else "_"
            ax.errorbar(xv, y, yerr=ci if np.isfinite(ci) else None, fmt=g.marker, ms=8,
                        capsize=3, color=g.color, mec="black", ecolor="0.3", zorder=3,
                        label=name)  # fmt: skip
            if several:  # sizes of equal memory (hnet's targets need not grow) alternate
                ax.annotate(g.size, (xv, y), xytext=(7, 6 if i % 2 == 0 else -12),
                            textcoords="offset points", fontsize=7.5, zorder=4,
                            path_effects=HALO)  # fmt: skip
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(numticks=12))
    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda v, _: "0" if math.isclose(v, zero) else f"{v:g}")
    )
    ax.set_xlim(zero / 2, hi * 2.5)
    if any(x <= 0 for pts in points.values() for x, *_ in pts):
        ax.axvline(math.sqrt(zero * lo), color="0.6", lw=0.8, ls=":")  # the axis break
    ax.set_xlabel("memory after the last task, in exemplar equivalents (log scale)")
    ax.set_ylabel(f"final {cell.noun} ({cell.unit})")
    if cell.unit == "%":  # whiskers of few seeds may reach past what an accuracy can be
        means = [y for pts in points.values() for _, y, _, _ in pts]
        ax.set_ylim(max(0.0, min(means) - 12), min(102.0, max(means) + 12))
    legend_right(ax)
    add_title(
        fig,
        cell,
        f"final {cell.noun} vs memory",
        "memory: bytes a method keeps beyond its network / bytes of one stored training input "
        "(0: keeps nothing). Points: mean over seeds; whiskers: 95 % CI; lines join one "
        "method's sizes (hnet: hypernetwork sizes, rehearsal methods: buffer sizes); points of "
        "equal memory are spread slightly sideways.",
    )
    return fig, ""
