"""The ``sensitivity`` figure: the selection metric against each swept value.

Why: a selected value means little without the curve it was picked from. A flat curve says the
method barely cares (and the choice hardly matters), a sharp peak at the edge of the sweep says
the sweep should be extended. One figure per benchmark × scenario, one panel per swept key, one
line per method and size: the mean over tuning seeds with its 95 % confidence band (Student t;
wide with two seeds, honestly), the single seeds as dots and the selected value ringed. A method
that sweeps several keys gets one line per combination of its other keys' values.

The x axis is logarithmic when the values are positive and span a factor of ten or more (as
sweeps of β, λ or learning rates do), symmetric-logarithmic when such a sweep also holds 0, linear
for other numbers, and categorical (in listed order) for words, booleans and lists.
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from hnet.report.layout import figure_path
from hnet.report.selection import finite, selected_groups
from hnet.report.style import (
    EXTRA_COLORS,
    METHOD_COLORS,
    METHOD_MARKERS,
    label,
    new_figure,
    save_figure,
)
from hnet.report.tables import mean_std_ci
from hnet.study.catalog import is_sized
from hnet.study.catalog import load as catalog

KIND = "sensitivity"


def axis_scale(values: list[Any]) -> str:
    """``log``, ``symlog``, ``linear`` or ``category`` for the listed values of one key."""
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not values or not numbers:
        return "category"
    pos = [v for v in values if v > 0]
    if min(values) >= 0 and len(pos) >= 2 and max(pos) / min(pos) >= 10:
        return "log" if len(pos) == len(values) else "symlog"
    return "linear"


def _colors(groups: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    sized = [(g["method"], g["size"]) for g in groups if is_sized(g["method"])]
    blues = sns.blend_palette(["#9ECAE1", "#08306B"], len(sized)) if len(sized) > 1 else ["#0072B2"]
    extra = iter(EXTRA_COLORS * 4)
    out = {}
    for g in groups:
        key = (g["method"], g["size"])
        if key in sized:
            out[key] = blues[sized.index(key)]
        else:
            out[key] = METHOD_COLORS.get(g["method"]) or next(extra)
    return out


def _lines(group: dict[str, Any], key: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """The group's candidates split by the values of its other swept keys (listed order)."""
    lines: dict[str, list[dict[str, Any]]] = {}
    for c in group["candidates"]:
        others = {k: v for k, v in c["point"].items() if k != key}
        name = ", ".join(f"{k.split('.', 1)[-1]}={_short(v)}" for k, v in others.items())
        lines.setdefault(name, []).append(c)
    return list(lines.items())


def fig_sensitivity(
    bench: str, scen: str, groups: list[dict[str, Any]], rule: dict[str, Any]
) -> Figure | None:
    keys: list[str] = []
    for g in groups:
        keys += [k for k in g["candidates"][0]["point"] if k not in keys]
    if not keys:
        return None
    regression = catalog()["benchmarks"].get(bench, {}).get("kind") == "regression"
    unit = "−MSE" if regression else "%"
    colors = _colors(groups)
    cols = min(len(keys), 3)
    rows = math.ceil(len(keys) / cols)
    fig = new_figure(4.8 * cols + 0.6, 3.6 * rows + 1.4)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, key in zip(axes, keys, strict=False):
        shown = [g for g in groups if key in g["candidates"][0]["point"]]
        _panel(ax, key, shown, colors)
        ax.set_ylabel(f"{rule['label']} ({unit})")
        _ylim(ax, shown, None if regression else (0.0, 100.0))
    for ax in axes[len(keys) :]:
        ax.set_visible(False)
    handles: dict[str, Any] = {}
    for ax in axes[: len(keys)]:  # panels hold different methods: one legend for all of them
        for h, name in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(name, h)
    fig.legend(
        handles.values(),
        handles.keys(),
        loc="outside lower center",
        ncols=min(len(handles), 4),
        frameon=False,
    )
    seeds = ", ".join(map(str, rule["seeds"]))
    sub = (
        f"lines: mean over tuning seeds {seeds}; bands: 95 % CI (framed to the seeds' scores); "
        f"dots: seeds; ringed: selected ({rule['aggregate']}, ties → first listed)"
    )
    chars = max(40, int(fig.get_figwidth() * 72 / (0.6 * 9)))
    title = f"{bench} / {scen}: sensitivity of {rule['metric']} to the swept values"
    fig.suptitle(title + "\n" + textwrap.fill(sub, chars), fontsize=10)
    return fig


def _panel(ax, key: str, groups: list[dict[str, Any]], colors: dict) -> None:
    listed: list[Any] = []
    for g in groups:
        for c in g["candidates"]:
            if c["point"][key] not in listed:
                listed.append(c["point"][key])
    scale = axis_scale(listed)
    texts = [json.dumps(v) for v in listed]

    def x_of(v: Any) -> float:
        return float(texts.index(json.dumps(v))) if scale == "category" else float(v)

    for g in groups:
        color = colors[g["method"], g["size"]]
        marker = METHOD_MARKERS.get(g["method"], "o")
        for i, (others, cands) in enumerate(_lines(g, key)):
            xs = np.array([x_of(c["point"][key]) for c in cands])
            stats = [mean_std_ci(np.array(finite(c["scores"]))) for c in cands]
            mean = np.array([s[1] for s in stats])
            ci = np.array([s[3] if math.isfinite(s[3]) else 0.0 for s in stats])
            name = label(g["method"], g["size"]) + (f" ({others})" if others else "")
            style = ("-", "--", ":", "-.")[i % 4]
            ax.plot(xs, mean, style, color=color, marker=marker, ms=5, lw=1.6, label=name)
            ax.fill_between(xs, mean - ci, mean + ci, color=color, alpha=0.15, lw=0)
            for x, c in zip(xs, cands, strict=True):
                pts = finite(c["scores"])
                ax.scatter([x] * len(pts), pts, s=9, color=color, alpha=0.6, lw=0, zorder=3)
                if c["point_dir"] == g["selected_dir"]:
                    ax.scatter(
                        [x],
                        [np.nanmean(pts) if pts else np.nan],
                        s=170,
                        facecolor="none",
                        edgecolor="black",
                        lw=1.4,
                        zorder=4,
                    )
    if scale == "category":
        ax.set_xticks(range(len(listed)), [_short(v) for v in listed])
        ax.set_xlim(-0.5, len(listed) - 0.5)
    elif scale in ("log", "symlog"):
        pos = [v for v in listed if v > 0]
        if scale == "log":
            ax.set_xscale("log")
        else:
            ax.set_xscale("symlog", linthresh=min(pos))
        ax.set_xticks(listed)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        lo, hi = min(pos), max(pos)
        ax.set_xlim(0 if scale == "symlog" else lo / 1.8, hi * 1.8)
    else:
        ax.set_xticks(listed)
    axis = {"log": "log scale", "symlog": "symmetric log scale"}.get(scale, "")
    ax.set_xlabel(f"{key}" + (f" ({axis})" if axis else ""))
    ax.set_title(key)


def _ylim(ax, groups: list[dict[str, Any]], bounds: tuple[float, float] | None) -> None:
    """Frame the seeds' scores, not the bands: with two tuning seeds a 95 % CI spans ±12.7
    standard deviations and would flatten every curve. Accuracies stay within 0–100 %."""
    pts = [v for g in groups for c in g["candidates"] for v in finite(c["scores"])]
    if not pts:
        return
    lo, hi = min(pts), max(pts)
    pad = max(0.3 * (hi - lo), 0.5)
    lo, hi = lo - pad, hi + pad
    if bounds is not None:
        lo, hi = max(lo, bounds[0] - 0.5), min(hi, bounds[1] + 0.5)
    ax.set_ylim(lo, hi)


def _short(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def draw(selection: dict[str, Any] | None, out: Path, exts: tuple[str, ...], dpi: int):
    """Every benchmark × scenario's sensitivity figure into ``out/figures/sensitivity/``;
    returns (files written, notes)."""
    if selection is None:  # a study without sweeps: nothing to draw, nothing to note
        return [], []
    written = []
    for (bench, scen), groups in selected_groups(selection).items():
        fig = fig_sensitivity(bench, scen, groups, selection["rule"])
        if fig is None:
            continue
        paths = [out / figure_path(KIND, bench, scen, ext) for ext in exts]
        save_figure(fig, paths, dpi)
        written += paths
    return written, []
