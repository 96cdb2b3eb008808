"""Small figures and tables of one run's score matrix (used by the MLflow mirror and reports).

numpy and matplotlib are imported inside the functions: the MLflow mirror imports this module
in every training job, and most jobs never draw.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any


def write_matrix_csv(R: Any, path: str | Path) -> None:
    """Score matrix as CSV: row ``after_task`` i, columns ``task1..taskT`` (1-based; NaN empty)."""
    rows = [["after_task", *(f"task{j + 1}" for j in range(len(R)))]]
    rows += [[i + 1, *("" if is_bad(v) else repr(float(v)) for v in r)] for i, r in enumerate(R)]
    Path(path).write_text("".join(",".join(map(str, r)) + "\n" for r in rows))


def draw_matrix(
    ax: Any,
    R: Any,
    vmin: float | None = None,
    vmax: float | None = None,
    max_annotated: int = 25,
    fontsize: float | None = None,
    max_ticks: int = 20,
) -> Any:
    """Heatmap of R on ``ax`` with 1-based task ticks; cell values written while T ≤
    ``max_annotated`` (beyond that the numbers are unreadable and the colours still tell).
    Returns the image (for a colorbar). Shared ``vmin``/``vmax`` make panels comparable."""
    import numpy as np

    M = np.array([[np.nan if is_bad(v) else v for v in r] for r in R], dtype=float)
    n = len(M)
    im = ax.imshow(np.ma.masked_invalid(M), cmap="viridis", aspect="equal", vmin=vmin, vmax=vmax)
    ticks = list(range(0, n, max(1, math.ceil(n / max_ticks))))
    ax.set_xticks(ticks, [str(t + 1) for t in ticks])
    ax.set_yticks(ticks, [str(t + 1) for t in ticks])
    ax.grid(False)
    if n <= max_annotated and np.isfinite(M).any():
        size = fontsize or max(5.0, min(9.0, 70 / n))
        lo = np.nanmin(M) if vmin is None else vmin
        hi = np.nanmax(M) if vmax is None else vmax
        fmt = ".1f" if np.nanmax(np.abs(M)) >= 10 else ".3g"  # percentages vs. small losses
        for (i, j), v in np.ndenumerate(M):
            if not np.isnan(v):
                dark = hi > lo and (v - lo) / (hi - lo) < 0.6
                ax.text(
                    j,
                    i,
                    format(v, fmt),
                    ha="center",
                    va="center",
                    fontsize=size,
                    color="white" if dark else "black",
                )
    return im


def plot_matrix(R: Any, path: str | Path, title: str = "", label: str = "score") -> None:
    """Heatmap of R with annotated cells and 1-based task numbers (Agg canvas, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    T = len(R)
    w, h = min(12.0, max(4.0, 0.55 * T + 2.2)), min(11.0, max(3.5, 0.5 * T + 1.6))
    fig = Figure(figsize=(w, h), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = draw_matrix(ax, R)
    fig.colorbar(im, ax=ax, shrink=0.8, label=label)
    ax.set(xlabel="evaluated on task", ylabel="after training task", title=title)
    fig.savefig(path, dpi=120)


def is_bad(v: Any) -> bool:
    """Not a loggable number: None, NaN (JSON null in matrices), bools, strings, lists."""
    return isinstance(v, bool) or not isinstance(v, numbers.Real) or math.isnan(v)
