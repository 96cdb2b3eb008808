"""The generated-samples figure of ``hnet report``: what a replay method's generator produces for
each earlier task after the last task, one figure per benchmark × scenario × method.

Why look at it: a replay method is only as good as its samples. A row that has drifted into
noise or into another task's images explains a forgotten task better than any number. The
job saves the grid (``samples.npz``: uint8 images, fixed noise) so this needs no torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from hnet.models.sizes import NO_SIZE
from hnet.report.layout import FIGURE_EXTS, figure_path
from hnet.report.runs import Runs, size_key
from hnet.report.style import DPI, new_figure, save_figure
from hnet.study.catalog import is_generative

GAP = 1  # pixels between samples in the mosaic


def mosaic(images: np.ndarray) -> np.ndarray:
    """(R, S, H, W) images → one (R·(H+GAP)−GAP, S·(W+GAP)−GAP) array in [0, 1], gaps NaN."""
    r, s, h, w = images.shape
    out = np.full((r * (h + GAP) - GAP, s * (w + GAP) - GAP), np.nan)
    for i in range(r):
        for j in range(s):
            y, x = i * (h + GAP), j * (w + GAP)
            out[y : y + h, x : x + w] = images[i, j] / 255.0
    return out


def row_label(task: int) -> str:
    return "unconditional" if task < 0 else f"task {task + 1}"


def fig_samples(
    bench: str, scen: str, method: str, size: str, seed: int, images: np.ndarray, tasks: list
) -> Figure:
    """The mosaic of one run's grid, rows labelled by task."""
    r, s, h, w = images.shape
    cell = 0.55  # inches per sample (square benchmarks: 8×8, 28×28, 32×32 pixels)
    fig = new_figure(max(5.0, 1.4 + s * cell), 1.1 + r * cell * h / w)
    ax = fig.add_subplot()
    ax.imshow(mosaic(images), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([i * (h + GAP) + (h - 1) / 2 for i in range(r)], [row_label(t) for t in tasks])
    ax.tick_params(length=0, labelsize=8)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    name = method if size == NO_SIZE else f"{method} ({size})"
    fig.suptitle(
        f"{bench} / {scen}: {name}, generated samples after the last task\n"
        f"seed {seed}; fixed noise; dark = high pixel value",
        fontsize=9,
    )
    return fig


def draw_samples(runs: Runs, out: Path) -> tuple[list[Path], list[str]]:
    """One figure per benchmark × scenario × generative method that has a saved sample grid
    (its first size in report order, lowest seed). Returns (files written, notes)."""
    written: list[Path] = []
    notes: list[str] = []
    table = runs.table
    for (bench, scen, method), g in table.groupby(["benchmark", "scenario", "method"], sort=False):
        if not is_generative(method):
            continue
        have = g[g["run_dir"].isin(runs.samples.keys())]
        if have.empty:
            notes.append(f"no figures/samples for {bench}/{scen}/{method}: no samples.npz")
            continue
        order = sorted(have.itertuples(), key=lambda r: (size_key(r.size), r.seed, r.run_dir))
        run = order[0]
        try:
            with np.load(runs.samples[run.run_dir]) as data:
                images, tasks = data["images"], data["tasks"].tolist()
            if images.ndim != 4 or len(tasks) != len(images):
                raise ValueError(f"images {images.shape}, {len(tasks)} row tasks")
        except (OSError, ValueError, KeyError) as e:
            notes.append(f"no figures/samples for {bench}/{scen}/{method}: unreadable ({e})")
            continue
        fig = fig_samples(bench, scen, method, run.size, run.seed, images, tasks)
        paths = [
            out / figure_path("samples", bench, scen, ext, method=method) for ext in FIGURE_EXTS
        ]
        save_figure(fig, paths, DPI)
        written += paths
    return written, notes
