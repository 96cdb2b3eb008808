"""Figures of ``hnet report``: one file per kind × benchmark × scenario (hnet.report.layout;
the generated-samples kind also per method, :mod:`hnet.report.sample_figures`).

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

from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator

from hnet.report import sensitivity
from hnet.report.layout import (
    FIGURE_EXTS,
    FIGURE_KINDS,
    PER_METHOD_KINDS,
    figure_dir,
    figure_path,
)
from hnet.report.memory_figure import fig_memory
from hnet.report.runs import REFERENCE, Runs
from hnet.report.sample_figures import draw_samples
from hnet.report.style import (
    DPI,
    HALO,
    RC,
    Cell,
    add_title,
    draw_bars,
    legend_right,
    make_cell,
    new_figure,
    save_figure,
)
from hnet.report.task_figures import (
    fig_during_vs_final,
    fig_embeddings,
    fig_final_per_task,
    fig_matrices,
)
from hnet.report.transfer_figure import fig_transfer_per_task


def fig_acc_final(cell: Cell) -> tuple[Figure | None, str]:
    groups = [g for g in cell.learners() if np.isfinite(cell.stat(g, "acc_final")[0])]
    if not groups:
        return None, "no finite acc_final of a method other than scratch"
    fig = new_figure(7.5, 1.6 + 0.34 * len(groups))
    ax = fig.add_subplot()
    draw_bars(ax, cell, groups, "acc_final")
    ax.set_xlabel(f"final {cell.noun} ({cell.unit}), mean over all tasks after the last one")
    add_title(
        fig, cell, f"final {cell.noun}", "bars: mean over seeds; whiskers: 95 % CI; dots: seeds"
    )
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
    fig = new_figure(12.5, 1.8 + 0.34 * len(groups))
    axes = fig.subplots(1, 3, sharey=True)
    for k, (ax, (metric, title)) in enumerate(zip(axes, FORGETTING_PANELS, strict=True)):
        draw_bars(ax, cell, groups, metric, with_labels=k == 0)
        ax.set_title(title)
        if any(cell.not_applicable(g, metric) for g in groups):  # FWT in CL1 and CL3
            ax.text(0.5, 0.5, f"n/a in {cell.scen}\n(docs/metrics.md)", transform=ax.transAxes,
                    ha="center", va="center", color="0.35")  # fmt: skip
        ax.set_xlabel(f"{metric.upper() if metric != 'forgetting' else metric} ({cell.diff_unit})")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    add_title(
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
        if g.method == REFERENCE
        and np.isfinite(cell.stat(g, "compression_ratio")[0])
        and np.isfinite(cell.stat(g, "acc_final")[0])
    ]
    if len(hn) < 2:
        return None, "needs 2 or more hnet sizes with a compression ratio"
    fig = new_figure(8.5, 4.6)
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
        if g.method == REFERENCE:
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
    legend_right(ax)
    add_title(
        fig,
        cell,
        f"final {cell.noun} vs hypernetwork compression",
        "points: mean over seeds per hnet size; whiskers: 95 % CI; dashed lines: mean of the "
        "other methods",
    )
    return fig, ""


DRAW: dict[str, Callable[[Cell], tuple[Figure | None, str]]] = {
    "acc_final": fig_acc_final,
    "forgetting": fig_forgetting,
    "compression": fig_compression,
    "memory": fig_memory,
    "matrices": fig_matrices,
    "final_per_task": fig_final_per_task,
    "during_vs_final": fig_during_vs_final,
    "transfer_per_task": fig_transfer_per_task,
    "embeddings": fig_embeddings,
}
# sensitivity is drawn from the selection file (hnet.report.sensitivity) and sample grids per
# method (hnet.report.sample_figures), not per benchmark × scenario from the runs
assert list(DRAW) == [
    k for k in FIGURE_KINDS if k not in PER_METHOD_KINDS and k != sensitivity.KIND
], "hnet.report.layout lists the kinds in display order"


def all_figures(
    runs: Runs, summary: pd.DataFrame, out: Path, selection: dict | None = None
) -> tuple[list[Path], list[str]]:
    """Every kind for every benchmark × scenario into ``out/figures/<kind>/``; files there that
    this call did not write (earlier reports) are deleted. Returns (files, notes).
    ``selection``: a study's selection file, for the sensitivity figures."""
    written: list[Path] = []
    skipped: dict[tuple[str, str], list[str]] = {}
    for kind in FIGURE_KINDS:
        (out / figure_dir(kind)).mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(RC):
        by_pair = dict(iter(summary.groupby(["benchmark", "scenario"], sort=False)))
        for (bench, scen), g in runs.table.groupby(["benchmark", "scenario"], sort=False):
            s = by_pair.get((bench, scen), summary.iloc[:0])
            cell = make_cell(bench, scen, g, s, runs)
            for kind, draw in DRAW.items():
                fig, why = draw(cell)
                if fig is None:
                    skipped.setdefault((kind, why), []).append(f"{bench}/{scen}")
                    continue
                paths = [out / figure_path(kind, bench, scen, ext) for ext in FIGURE_EXTS]
                save_figure(fig, paths, DPI)
                written += paths
        tuned, tuned_notes = sensitivity.draw(selection, out, FIGURE_EXTS, DPI)
        sample_files, sample_notes = draw_samples(runs, out)  # one per method: its own loop
    written += tuned + sample_files
    remove_stale(out, written)
    notes = [
        f"no figures/{kind} for {', '.join(where)}: {why}" for (kind, why), where in skipped.items()
    ]
    return written, notes + tuned_notes + sample_notes


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
