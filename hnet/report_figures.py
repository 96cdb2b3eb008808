"""Figures of ``hnet report`` (Agg canvases, no pyplot state; PNG + SVG)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hnet.plots import plot_matrix
from hnet.report import Runs
from hnet.report_tables import LABELS

RC = {"svg.hashsalt": "hnet-report", "font.size": 10}  # stable SVG ids


def _label(method: str, size: str) -> str:
    return method if size == "-" else f"{method}\n{size}"


def _panels(n: int) -> tuple[Figure, list]:
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(5.2 * cols, 4.2 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n)]
    return fig, axes


def _save(fig: Figure, base: Path) -> list[Path]:
    out = []
    with matplotlib.rc_context(RC):
        for ext in ("png", "svg"):
            path = base.parent / f"{base.name}.{ext}"
            fig.savefig(path, dpi=120, metadata={"Date": None} if ext == "svg" else None)
            out.append(path)
    return out


def bar_figure(runs: pd.DataFrame, summary: pd.DataFrame, metric: str, base: Path) -> list[Path]:
    """Mean ± 95 % CI per method (and hnet size), one panel per benchmark × scenario; dots are
    the individual seeds."""
    s = summary[(summary["metric"] == metric) & np.isfinite(summary["mean"])]
    if metric != "acc_during":
        s = s[s["method"] != "scratch"]  # only scratch's diagonal means something
    panels = list(s.groupby(["benchmark", "scenario"], sort=False))
    if not panels:
        return []
    fig, axes = _panels(len(panels))
    for ax, ((bench, scen), g) in zip(axes, panels, strict=False):
        colors = sns.color_palette("colorblind", len(g))
        x = np.arange(len(g))
        ci = np.nan_to_num(g["ci95"].to_numpy(), nan=0.0)
        ax.bar(x, g["mean"], color=colors, alpha=0.8, edgecolor="black", linewidth=0.6)
        ax.errorbar(x, g["mean"], yerr=ci, fmt="none", ecolor="black", capsize=4, lw=1.2)
        for i, r in enumerate(g.itertuples()):
            pts = runs[
                (runs["benchmark"] == bench)
                & (runs["scenario"] == scen)
                & (runs["method"] == r.method)
                & (runs["size"] == r.size)
            ][metric].dropna()
            ax.scatter(np.full(len(pts), i), pts, s=12, color="black", zorder=3)
        ax.set_xticks(x, [_label(m, z) for m, z in zip(g["method"], g["size"], strict=False)])
        ax.tick_params(axis="x", labelrotation=45 if len(g) > 5 else 0, labelsize=9)
        ax.axhline(0, color="grey", lw=0.6)
        ax.set(title=f"{bench} / {scen}", ylabel=LABELS[metric])
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{LABELS[metric]}\n(mean ± 95 % CI over seeds; dots: single seeds)")
    return _save(fig, base)


def compression_figure(summary: pd.DataFrame, base: Path) -> list[Path]:
    """hnet acc_final vs compression ratio per size; other methods as horizontal lines."""
    wide = summary.pivot_table(
        index=["benchmark", "scenario", "method", "size"],
        columns="metric",
        values=["mean", "ci95"],
        sort=False,
        dropna=False,
    )
    wide.columns = [f"{a}_{b}" for a, b in wide.columns]
    wide = wide.reset_index()
    hn = wide[(wide["method"] == "hnet") & np.isfinite(wide["mean_compression_ratio"])]
    panels = list(hn.groupby(["benchmark", "scenario"], sort=False))
    if not panels:
        return []
    fig, axes = _panels(len(panels))
    for ax, ((bench, scen), g) in zip(axes, panels, strict=False):
        g = g.sort_values("mean_compression_ratio")
        ax.errorbar(
            g["mean_compression_ratio"],
            g["mean_acc_final"],
            yerr=np.nan_to_num(g["ci95_acc_final"].to_numpy(), nan=0.0),
            fmt="o-",
            capsize=4,
            color="black",
            label="hnet",
        )
        for r in g.itertuples():
            ax.annotate(
                r.size,
                (r.mean_compression_ratio, r.mean_acc_final),
                xytext=(5, 5),
                textcoords="offset points",
            )
        base_rows = wide[
            (wide["benchmark"] == bench)
            & (wide["scenario"] == scen)
            & ~wide["method"].isin(["hnet", "scratch"])
            & np.isfinite(wide["mean_acc_final"])
        ]
        colors = sns.color_palette("colorblind", max(1, len(base_rows)))
        for c, r in zip(colors, base_rows.itertuples(), strict=False):
            ax.axhline(r.mean_acc_final, ls="--", color=c, lw=1.2, label=r.method)
        ax.set(
            title=f"{bench} / {scen}",
            xlabel="compression ratio (hnet params / target params)",
            ylabel=LABELS["acc_final"],
        )
        ax.grid(alpha=0.3)
        ax.margins(x=0.15)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle("hnet final accuracy vs compression\n(mean ± 95 % CI; dashed: other methods)")
    return _save(fig, base)


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", s)


def matrix_figures(runs: Runs, figures: Path) -> tuple[list[Path], list[str]]:
    """Mean score matrix over seeds per group (groups whose runs differ in T are skipped)."""
    out, notes = [], []
    t = runs.table
    for (bench, scen, method, size), g in t.groupby(
        ["benchmark", "scenario", "method", "size"], sort=False
    ):
        mats = [runs.matrices[d] for d in g["run_dir"]]
        if len({m.shape for m in mats}) > 1:
            notes.append(f"skipped matrix {bench}/{scen}/{method}/{size}: runs differ in T")
            continue
        M = np.mean(mats, axis=0)
        base = figures / _safe(f"matrix_{bench}_{scen}_{method}_{size}")
        title = f"{bench} / {scen}: {method}" + ("" if size == "-" else f" ({size})")
        title += f", mean of {len(mats)} run{'s' * (len(mats) > 1)}"
        with matplotlib.rc_context(RC):
            for ext in ("png", "svg"):
                plot_matrix(
                    M.tolist(), base.parent / f"{base.name}.{ext}", title=title, label="score"
                )
                out.append(base.parent / f"{base.name}.{ext}")
    return out, notes


def all_figures(runs: Runs, summary: pd.DataFrame, figures: Path) -> tuple[list[Path], list[str]]:
    out, notes = [], []
    for metric in ("acc_final", "forgetting"):
        files = bar_figure(runs.table, summary, metric, figures / metric)
        out += files
        if not files:
            notes.append(f"skipped figures/{metric}.png: no finite {metric} values")
    files = compression_figure(summary, figures / "acc_vs_compression")
    out += files
    if not files:
        notes.append("skipped figures/acc_vs_compression.png: no hnet runs")
    files, more = matrix_figures(runs, figures)
    return out + files, notes + more
