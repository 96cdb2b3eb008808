"""``hnet report``: tables, paired comparisons, figures and missing cells.

Two inputs: real (tiny) run directories written by ``run_job`` (the integration with
``hnet train``), and a synthetic study whose metrics.json files are written directly, with a
grid file and failed / interrupted / never-run cells, as the study workflow leaves them.
"""

from __future__ import annotations

import json
import shutil
import struct

import numpy as np
import pandas as pd
import pytest
import torch

from hnet import metrics
from hnet.errors import HnetError
from hnet.models.sizes import NO_SIZE
from hnet.report.build import make_report
from hnet.report.layout import (
    FIGURE_KINDS,
    PER_METHOD_KINDS,
    TABLES,
    TRANSFER_CONTROLS,
    figure_kinds_for,
    figure_labels,
    figure_path,
    figure_pattern,
)
from hnet.report.missing import load_grid, missing_cells
from hnet.report.runs import collect_runs
from hnet.report.tables import SUMMARY_METRICS, missing_markdown

SEEDS = (0, 1, 2)
GRID = (("hnet", "official"), ("hnet", "cr0.5"), ("finetune", None), ("scratch", None))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from hnet.config import resolve
    from hnet.job.run import run_job

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("results")
    try:
        for method, size in GRID:
            for seed in SEEDS:
                cfg = resolve(
                    "split_digits",
                    method,
                    seed=seed,
                    size=size,
                    overrides={"train.iters": 10},
                    device="cpu",
                )
                run_job(cfg, root / f"{method}-{size or 'base'}" / f"seed{seed}", progress=False)
    finally:
        torch.set_num_threads(threads)
    # runs moved aside by --restart and checkpoint dirs are not runs
    shutil.copytree(root / "finetune-base" / "seed0", root / "finetune-base" / "seed0.old-1")
    return root


@pytest.fixture(scope="module")
def report(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return make_report(results, out), out


def read(out, name):
    return pd.read_csv(out / "tables" / name, keep_default_na=False, na_values=[""])


def test_runs_table(report):
    _, out = report
    runs = read(out, "runs.csv")
    assert len(runs) == len(GRID) * len(SEEDS)
    assert not runs["run_dir"].str.contains("old-").any()
    assert set(runs.loc[runs["method"] != "hnet", "size"]) == {NO_SIZE}
    assert set(runs.loc[runs["method"] == "hnet", "size"]) == {"official", "cr0.5"}
    assert runs["compression_ratio"].notna().sum() == 2 * len(SEEDS)
    scratch = runs[runs["method"] == "scratch"]
    np.testing.assert_allclose(scratch["transfer_vs_scratch"], 0.0, atol=1e-12)
    assert runs["transfer_vs_scratch"].notna().all()


def test_transfer_is_diagonal_difference(results):
    runs = collect_runs(results)
    t = runs.table
    for r in t[t["method"] == "finetune"].itertuples():
        s = t[(t["method"] == "scratch") & (t["seed"] == r.seed)].iloc[0]
        want = np.mean(np.diag(runs.matrices[r.run_dir]) - np.diag(runs.matrices[s.run_dir]))
        assert r.transfer_vs_scratch == pytest.approx(want)


def test_summary_matches_numpy(report):
    _, out = report
    runs, summary = read(out, "runs.csv"), read(out, "summary.csv")
    for (method, size), g in runs.groupby(["method", "size"]):
        for metric in ("acc_final", "forgetting", "train_seconds"):
            row = summary[
                (summary["method"] == method)
                & (summary["size"] == size)
                & (summary["metric"] == metric)
            ].iloc[0]
            v = g[metric].to_numpy()
            assert row["n_seeds"] == len(SEEDS)
            assert row["mean"] == pytest.approx(np.mean(v))
            assert row["std"] == pytest.approx(np.std(v, ddof=1))
            assert row["ci95"] == pytest.approx(4.302652729911275 * np.std(v, ddof=1) / 3**0.5)


def test_best_marks(report):
    _, out = report
    summary = read(out, "summary.csv")
    md = (out / "tables" / "summary.md").read_text()
    tex = (out / "tables" / "summary.tex").read_text()
    for metric, pick in (("acc_final", "max"), ("forgetting", "min"), ("acc_during", "max")):
        s = summary[summary["metric"] == metric]
        if metric != "acc_during":
            s = s[s["method"] != "scratch"]
        best = s.loc[s["mean"].idxmax() if pick == "max" else s["mean"].idxmin()]
        flagged = summary[(summary["metric"] == metric) & summary["best"]]
        assert list(zip(flagged["method"], flagged["size"], strict=False)) == [
            (best["method"], best["size"])
        ]
        cell = f"{best['mean']:.2f} ± {best['std']:.2f}"
        assert f"**{cell}**" in md
        tex_cell = cell.replace(" ± ", " $\\pm$ ")
        assert "\\textbf{" + tex_cell + "}" in tex
    assert not summary[summary["metric"] == "compression_ratio"]["best"].any()
    rows = "".join(line for line in md.splitlines() if line.startswith("|"))
    assert rows.count("**") == 2 * int(summary["best"].sum())


def test_paired_differences(report):
    """The reference is fixed in advance (official without --hnet-ref), never the best size;
    p-values are Holm-adjusted over the table's comparisons."""
    _, out = report
    runs, paired = read(out, "runs.csv"), read(out, "paired_vs_hnet.csv")
    ref, other = "official", "cr0.5"
    assert set(paired["hnet_size"]) == {ref}
    assert {(m, s) for m, s in zip(paired["method"], paired["size"], strict=False)} == {
        ("hnet", other),
        ("finetune", NO_SIZE),
        ("scratch", NO_SIZE),
    }
    h = runs[(runs["method"] == "hnet") & (runs["size"] == ref)].set_index("seed")["acc_final"]
    for r in paired.itertuples():
        a = runs[(runs["method"] == r.method) & (runs["size"] == r.size)]
        d = a.set_index("seed")["acc_final"] - h
        assert r.n_pairs == 3 and r.seeds == "0 1 2"
        assert r.diff_mean == pytest.approx(d.mean())
        assert r.diff_ci_high - r.diff_mean == pytest.approx(r.diff_ci95)
        assert 0 <= r.p_value <= r.p_holm <= 1
    ranked = paired.sort_values("p_value")
    assert list(ranked["p_holm"]) == sorted(ranked["p_holm"])  # step-down keeps the order
    assert ranked["p_holm"].iloc[0] == pytest.approx(min(1.0, 3 * ranked["p_value"].iloc[0]))
    md = (out / "tables" / "paired_vs_hnet.md").read_text()
    assert md.count("\n| ") == 4 and "Holm" in md and "p (Holm)" in md


def test_figures_of_real_runs(report):
    """Real hnet runs carry task_embeddings and two sizes: every kind is drawn (but the
    sensitivity figure, which needs a study's selection file, and the generated samples, which
    need a replay method: test_sample_figure_of_a_replay_run)."""
    rep, out = report
    assert not any((out / "figures" / "sensitivity").iterdir())
    for kind in (k for k in FIGURE_KINDS if k not in PER_METHOD_KINDS and k != "sensitivity"):
        png = out / figure_path(kind, "split_digits", "cl1", "png")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", kind
        assert png.stat().st_size > 5000
        assert (out / figure_path(kind, "split_digits", "cl1", "svg")).stat().st_size > 0
    assert rep.notes == []
    assert rep.missing is None and rep.n_expected is None
    assert "No grid file was given" in (out / "tables" / "missing.md").read_text()
    assert (out / "tables" / "missing.csv").read_text().count("\n") == 1  # header only
    assert sorted(p.name for p in (out / "tables").iterdir()) == sorted(TABLES)
    assert (out / "tables" / "selected.csv").read_text().count("\n") == 1  # header only
    assert "No tuning stage" in (out / "tables" / "selected.md").read_text()


def test_sample_figure_of_a_replay_run(tmp_path):
    """A replay run leaves samples.npz; the report draws it as one figure per method, from the
    first seed, and reads nothing but the npz (no torch model)."""
    from hnet.config import resolve
    from hnet.job.run import run_job

    for seed in (1, 0):
        over = {"train.iters": 5, "data.classes_per_task": 5}
        cfg = resolve("split_digits", "hnet_r", "cl3", seed=seed, overrides=over, device="cpu")
        run_job(cfg, tmp_path / "runs" / f"seed{seed}", progress=False)
    with np.load(tmp_path / "runs" / "seed0" / "samples.npz") as grid:
        assert grid["images"].shape == (1, 8, 8, 8) and grid["images"].dtype == np.uint8
        assert grid["tasks"].tolist() == [0]  # the last task is never replayed
    rep = make_report(tmp_path / "runs", tmp_path / "out")
    png = tmp_path / "out" / figure_path("samples", "split_digits", "cl3", "png", "hnet_r")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {p.name for p in (tmp_path / "out" / "figures" / "samples").iterdir()} == {
        "split_digits__cl3__hnet_r.png",
        "split_digits__cl3__hnet_r.svg",
    }
    assert not any("samples" in n for n in rep.notes)
    (tmp_path / "runs" / "seed0" / "samples.npz").write_bytes(b"not an npz")
    (tmp_path / "runs" / "seed1" / "samples.npz").unlink()
    rep = make_report(tmp_path / "runs", tmp_path / "out")
    assert any(n.startswith("no figures/samples for split_digits/cl3/hnet_r") for n in rep.notes)
    assert not png.exists()  # stale figures go


def test_partial_inputs(results, tmp_path):
    """One seed, no scratch, no hnet: what can be produced is, the rest is a note."""
    src = tmp_path / "in"
    shutil.copytree(results / "finetune-base" / "seed0", src / "ft")
    rep = make_report(src, tmp_path / "out")
    assert any("transfer_vs_scratch" in n for n in rep.notes)
    assert any("paired comparison" in n for n in rep.notes)
    assert any(n.startswith("no figures/compression") for n in rep.notes)
    assert any(n.startswith("no figures/embeddings") for n in rep.notes)
    summary = read(tmp_path / "out", "summary.csv")
    assert summary.loc[summary["metric"] == "acc_final", "ci95"].isna().all()
    assert (tmp_path / "out" / figure_path("acc_final", "split_digits", "cl1", "png")).exists()
    assert not any((tmp_path / "out" / "figures" / "compression").iterdir())


def test_empty_dir(tmp_path):
    (tmp_path / "run" / "state").mkdir(parents=True)
    (tmp_path / "run" / "state" / "metrics.json").write_text("{}")
    with pytest.raises(HnetError, match=f"No metrics.json found under {tmp_path}"):
        make_report(tmp_path)


# -- a synthetic study: metrics.json files written directly, a grid file, missing cells ---------

T = 3
STUDY = (  # benchmark, scenario, method, size (as in the grid: "none" for baselines)
    ("benchA", "cl1", "hnet", "cr0.1"),
    ("benchA", "cl1", "hnet", "cr0.5"),
    ("benchA", "cl1", "finetune", "none"),
    ("benchA", "cl1", "scratch", "none"),
    ("benchA", "cl3", "hnet", "official"),
    ("benchA", "cl3", "finetune", "none"),
    ("benchB", "cl1", "finetune", "none"),  # a regression benchmark (score: neg_mse)
    ("benchB", "cl1", "ewc", "none"),
)
STUDY_SEEDS = (0, 1)
FAILED = ("benchA", "cl1", "ewc", "none", 0)
INTERRUPTED = ("benchA", "cl1", "ewc", "none", 1)
NOT_RUN = ("benchA", "cl1", "hnet", "cr0.5", 2)
LONG_MESSAGE = "Training diverged: the loss is nan at task 2, step 7. " + "x" * 400


def run_dir(bench, scen, method, size, seed):
    return f"runs/{bench}/{scen}/{method}/{size}/seed{seed}"


def synthetic_metrics(bench, scen, method, size, seed):
    """A plausible T×T matrix (forgetting grows with distance) and its metrics.json."""
    drop = {"hnet": 0.5, "finetune": 20.0, "ewc": 8.0, "scratch": 45.0}[method]
    drop += {"cr0.1": 2.0}.get(size, 0.0)
    R = np.array(
        [
            [90 - drop * (i - j) + 0.7 * seed * (j + 1) if j <= i else 10 + j for j in range(T)]
            for i in range(T)
        ]
    )
    b = np.full(T, 10.0)
    regression = bench == "benchB"
    if regression:
        R, b = -(100 - R) / 50, -(100 - b) / 50
    m = {
        "benchmark": bench,
        "scenario": scen,
        "method": method,
        "size": size if method == "hnet" else "official",
        "seed": seed,
        "score": "neg_mse" if regression else "accuracy_percent",
        "acc_matrix": R.tolist(),
        "acc_init": b.tolist(),
        **metrics.all_metrics(R, b),
        "train_seconds": 5.0 + seed + len(method),
        # what it keeps (hnet.job.memory): finetune and scratch nothing
        "memory_exemplars": {"hnet": 300.0, "ewc": 4000.0}.get(method, 0.0),
    }
    if method == "hnet":
        rng = np.random.default_rng(seed)
        m |= {
            "compression_ratio": float(size[2:]) if size.startswith("cr") else 1.2,
            "n_params_hnet": 100,
            "n_params_target": 200,
            "task_embeddings": rng.normal(size=(T, 4)).tolist(),
        }
    return m


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """root/grid.json and root/runs/...: 16 finished cells, one failed, one interrupted (a
    checkpoint) and one never started."""
    root = tmp_path_factory.mktemp("study")
    cells = []
    for bench, scen, method, size in STUDY:
        for seed in STUDY_SEEDS:
            d = root / run_dir(bench, scen, method, size, seed)
            d.mkdir(parents=True)
            m = synthetic_metrics(bench, scen, method, size, seed)
            (d / "metrics.json").write_text(json.dumps(m))
            cells.append((bench, scen, method, size, seed))
    failed = root / run_dir(*FAILED)
    failed.mkdir(parents=True)
    (failed / "failed.json").write_text(
        json.dumps(
            {"error": "TrainingDiverged", "message": LONG_MESSAGE, "exit_code": 1, "time": "t0"}
        )
    )
    (root / run_dir(*INTERRUPTED) / "state").mkdir(parents=True)
    (root / run_dir(*INTERRUPTED) / "state" / "ckpt.pt").write_bytes(b"ckpt")
    cells += [FAILED, INTERRUPTED, NOT_RUN]
    grid = {
        "study": "synthetic",
        "cells": [
            dict(benchmark=b, scenario=s, method=m, size=z, seed=k, run_dir=run_dir(b, s, m, z, k))
            for b, s, m, z, k in cells
        ],
    }
    (root / "grid.json").write_text(json.dumps(grid))
    return root


@pytest.fixture(scope="module")
def study_report(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("study_report")
    return make_report(study / "runs", out, expected=study / "grid.json"), out


def expected_figures() -> set[str]:
    """Figure files the finished cells of STUDY allow, from the layout module's own rule."""
    files = set()
    for bench, scen in {(b, s) for b, s, *_ in STUDY}:
        cells = [(m, z) for b, s, m, z in STUDY if (b, s) == (bench, scen)]
        sizes = [z for m, z in cells if m == "hnet"]
        for kind in figure_kinds_for([m for m, _ in cells], sizes):
            files |= {figure_path(kind, bench, scen, ext) for ext in ("png", "svg")}
    return files


def figure_files(out) -> set[str]:
    return {p.relative_to(out).as_posix() for p in (out / "figures").rglob("*") if p.is_file()}


def png_size(path) -> tuple[int, int]:
    return struct.unpack(">II", path.read_bytes()[16:24])


def test_layout_rules():
    assert list(FIGURE_KINDS) == [
        "acc_final",
        "forgetting",
        "compression",
        "memory",
        "matrices",
        "final_per_task",
        "during_vs_final",
        "transfer_per_task",
        "samples",
        "embeddings",
        "sensitivity",
    ]
    assert all(len(t) == 2 and t[0] and t[1].endswith(".") for t in FIGURE_KINDS.values())
    assert figure_path("matrices", "split_mnist", "cl3", "svg") == (
        "figures/matrices/split_mnist__cl3.svg"
    )
    assert figure_path("samples", "split_mnist", "cl3", "png", method="hnet_r") == (
        "figures/samples/split_mnist__cl3__hnet_r.png"
    )
    with pytest.raises(ValueError, match="needs a method"):
        figure_path("samples", "split_mnist", "cl3", "png")
    with pytest.raises(ValueError, match="takes no method"):
        figure_path("matrices", "split_mnist", "cl3", "png", method="hnet")
    assert figure_pattern("samples") == "{benchmark}__{scenario}__{method}.png"
    assert figure_pattern("acc_final") == "{benchmark}__{scenario}.png"
    assert set(figure_labels("samples")) == {"benchmark", "scenario", "method"}
    all_but = lambda *no: [k for k in FIGURE_KINDS if k not in (*no, "sensitivity")]  # noqa: E731
    tp, sm = "transfer_per_task", "samples"
    assert figure_kinds_for(["hnet", "scratch"], ["cr0.1", "cr0.5"]) == all_but(sm)
    assert figure_kinds_for(["hnet", "ewc"], ["cr0.1", "cr0.5"]) == all_but(tp, sm)
    assert figure_kinds_for(["hnet", "ewc"], ["official"]) == all_but("compression", tp, sm)
    assert figure_kinds_for(["ewc", "scratch"]) == all_but("compression", "embeddings", tp, sm)
    assert figure_kinds_for(["scratch"]) == ["matrices"]
    assert tp in figure_kinds_for(["hnet", "scratch"], ["official"])
    assert tp in figure_kinds_for(["hnet", "finetune"], ["official"])
    assert tp in figure_kinds_for(["hnet", "hnet_scratch"], ["official"])
    only_control = figure_kinds_for(["hnet_scratch"], ["official", "cr0.5"])
    assert not {"compression", "embeddings", tp} & set(only_control) and "acc_final" in only_control
    assert tuple(metrics.TRANSFER_CONTROLS) == TRANSFER_CONTROLS  # layout's copy, numpy-free
    assert figure_kinds_for(["hnet", "hnet_tir", "dgr_distill"], ["official"]) == all_but(
        "compression", tp
    )
    assert sm in figure_kinds_for(["hnet_r"])
    assert figure_kinds_for(["hnet", "ewc"], ["official"], tuned=True) == [
        *all_but("compression", tp, sm),
        "sensitivity",
    ]


def test_study_figures(study_report):
    """Exactly the possible figures exist (png + svg per benchmark × scenario); every kind has
    its directory, also the ones empty for this grid."""
    rep, out = study_report
    assert all((out / "figures" / kind).is_dir() for kind in FIGURE_KINDS)
    files = figure_files(out)
    assert files == expected_figures()
    assert figure_path("compression", "benchA", "cl1", "png") in files
    assert figure_path("compression", "benchA", "cl3", "png") not in files  # one hnet size
    assert figure_path("embeddings", "benchB", "cl1", "png") not in files  # no hnet
    for f in files:
        head = (out / f).read_bytes()[:8]
        assert head == b"\x89PNG\r\n\x1a\n" if f.endswith(".png") else head.startswith(b"<?xml")
    assert {p for p in rep.written if "figures" in p.parts} == {out / f for f in files}
    # the bar charts grow with the number of bars: 3 learners in benchA/cl1, 2 in benchB/cl1
    a = png_size(out / figure_path("acc_final", "benchA", "cl1", "png"))
    b = png_size(out / figure_path("acc_final", "benchB", "cl1", "png"))
    assert a[1] > b[1]


def test_study_missing_cells(study_report):
    rep, out = study_report
    missing = read(out, "missing.csv")
    status = {
        (r.benchmark, r.scenario, r.method, r.size, r.seed): r.status for r in missing.itertuples()
    }
    base = lambda c: (*c[:3], NO_SIZE if c[2] != "hnet" else c[3], c[4])  # noqa: E731
    assert status == {
        base(FAILED): "failed",
        base(INTERRUPTED): "interrupted",
        base(NOT_RUN): "not started",
    }
    failed = missing[missing["status"] == "failed"].iloc[0]
    assert failed["error"] == "TrainingDiverged" and failed["exit_code"] == 1
    assert failed["message"].startswith("Training diverged: the loss is nan at task 2")
    assert len(failed["message"]) <= 200
    assert failed["run_dir"] == run_dir(*FAILED)
    assert list(missing["method"]) == ["hnet", "ewc", "ewc"]  # report order: hnet first
    md = (out / "tables" / "missing.md").read_text()
    assert "3 of 19 expected cells have no result: 1 failed, 1 interrupted, 1 not started." in md
    assert md.count("\n| benchA |") == 3
    summary_md = (out / "tables" / "summary.md").read_text()
    assert summary_md.startswith("16 of 19 expected cells finished (study synthetic)")
    assert rep.n_expected == 19
    assert rep.missing_summary().startswith(
        "missing 3 of 19 expected cells (1 failed, 1 interrupted, 1 not started)"
    )


def test_study_summary(study_report):
    """Every summary metric per group, in long and wide form, matching numpy."""
    _, out = study_report
    runs, summary, wide = (
        read(out, "runs.csv"),
        read(out, "summary.csv"),
        read(out, "summary_wide.csv"),
    )
    assert len(runs) == len(STUDY) * len(STUDY_SEEDS)
    assert set(runs.loc[runs["benchmark"] == "benchB", "score"]) == {"neg_mse"}
    for _, g in summary.groupby(["benchmark", "scenario", "method", "size"]):
        assert list(g["metric"]) == SUMMARY_METRICS
    for m in SUMMARY_METRICS:
        assert {f"{m}_mean", f"{m}_std", f"{m}_ci95", f"{m}_best"} <= set(wide.columns)
    assert len(wide) == len(STUDY)
    h = runs[(runs["scenario"] == "cl1") & (runs["method"] == "hnet") & (runs["size"] == "cr0.1")]
    w = wide[(wide["scenario"] == "cl1") & (wide["size"] == "cr0.1")].iloc[0]
    for m in ("acc_final", "forgetting", "compression_ratio", "train_seconds"):
        v = h[m].to_numpy()
        assert w[f"{m}_mean"] == pytest.approx(v.mean())
        assert w[f"{m}_std"] == pytest.approx(np.std(v, ddof=1))
        assert w[f"{m}_ci95"] == pytest.approx(12.706204736174705 * np.std(v, ddof=1) / 2**0.5)
    best = wide[(wide["benchmark"] == "benchA") & (wide["scenario"] == "cl1")]
    assert list(best.loc[best["acc_final_best"], "size"]) == ["cr0.5"]  # least forgetting
    assert not best["compression_ratio_best"].any()


def test_rerun_is_identical_and_removes_stale(study, study_report, tmp_path):
    """A second report into a directory holding an earlier report's leftovers: byte-identical
    tables and figures, and nothing else in the figure directories."""
    _, out = study_report
    stale = [
        figure_path("acc_final", "gone", "cl1", "png"),
        figure_path("embeddings", "benchB", "cl1", "svg"),  # a kind benchB cannot have now
        "figures/acc_final.png",  # the old flat layout
    ]
    for f in stale:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes(b"old")
    (tmp_path / "figures" / "custom").mkdir()  # not a kind directory: left alone
    (tmp_path / "figures" / "custom" / "mine.png").write_bytes(b"keep")
    make_report(study / "runs", tmp_path, expected=study / "grid.json")
    assert not any((tmp_path / f).exists() for f in stale)
    assert figure_files(tmp_path) == expected_figures() | {"figures/custom/mine.png"}
    for name in TABLES:
        assert (tmp_path / "tables" / name).read_bytes() == (out / "tables" / name).read_bytes()
    for f in expected_figures():
        assert (tmp_path / f).read_bytes() == (out / f).read_bytes(), f


def test_missing_cell_rules(study, tmp_path):
    """A metrics.json that cannot be read is 'unreadable', not silently finished; no missing
    cell: the all-finished sentence."""
    grid = load_grid(study / "grid.json")
    runs = collect_runs(study / "runs")
    bad = study / run_dir(*NOT_RUN)
    bad.mkdir(parents=True)
    try:
        (bad / "metrics.json").write_text("{not json")
        missing, notes = missing_cells(grid, study / "runs", collect_runs(study / "runs").table)
        assert missing.loc[missing["seed"] == 2, "status"].tolist() == ["unreadable"]
        assert notes == []
    finally:
        shutil.rmtree(bad)
    done = [c for c in grid.cells if (study / c["run_dir"] / "metrics.json").exists()]
    sub = type(grid)(grid.study, grid.path, done)
    missing, _ = missing_cells(sub, study / "runs", runs.table)
    assert missing.empty
    assert missing_markdown(missing, len(done)).endswith(
        f"All {len(done)} expected cells finished.\n"
    )
    # runs outside the grid are reported, not dropped
    _, notes = missing_cells(type(grid)("", grid.path, done[:-1]), study / "runs", runs.table)
    assert notes and "1 run(s)" in notes[0]


def test_bad_or_empty_grid(tmp_path):
    (tmp_path / "grid.json").write_text('{"cells": [{"benchmark": "x"}]}')
    with pytest.raises(HnetError, match=r"--expected .*grid.json: not a readable grid file"):
        make_report(tmp_path, tmp_path / "out", expected=tmp_path / "grid.json")
    cell = dict(benchmark="b", scenario="cl1", method="ewc", size="none", seed=0, run_dir="r/0")
    (tmp_path / "grid.json").write_text(json.dumps({"study": "s", "cells": [cell]}))
    with pytest.raises(HnetError, match=r"No metrics.json found.*lists the 1 expected cells"):
        make_report(tmp_path / "r", tmp_path / "out", expected=tmp_path / "grid.json")
    missing_md = (tmp_path / "out/tables/missing.md").read_text()
    assert "| b | cl1 | ewc | none | 0 | not started |" in missing_md


def test_cli_expected(study, tmp_path, capsys):
    """The workflow's call: prints where it wrote and one line about missing cells."""
    from hnet.cli import main

    grid = json.loads((study / "grid.json").read_text())
    grid["cells"] = [c for c in grid["cells"] if c["benchmark"] == "benchB"]
    grid["cells"].append({**grid["cells"][0], "seed": 7, "run_dir": "runs/benchB/nowhere"})
    (tmp_path / "grid.json").write_text(json.dumps(grid))
    shutil.copytree(study / "runs" / "benchB", tmp_path / "runs" / "benchB")
    args = ["report", str(tmp_path / "runs"), "--out", str(tmp_path / "rep")]
    assert main([*args, "--expected", str(tmp_path / "grid.json")]) == 0
    stdout = capsys.readouterr().out
    assert "missing 1 of 5 expected cells (1 not started)" in stdout
    assert figure_files(tmp_path / "rep") == {
        figure_path(k, "benchB", "cl1", e)
        for k in figure_kinds_for(["finetune", "ewc"])
        for e in ("png", "svg")
    }
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "No metrics.json" in capsys.readouterr().err


def test_pca_and_units(study):
    from hnet.report.style import make_cell
    from hnet.report.tables import summarize
    from hnet.report.task_figures import pca2

    line = np.outer(np.arange(5.0), [1.0, 2.0, 2.0])  # points on a line, 3 apart
    P, var = pca2(line)
    assert var[0] == pytest.approx(1.0) and var[1] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(np.abs(np.diff(P[:, 0])), 3.0)
    np.testing.assert_allclose(P[:, 1], 0.0, atol=1e-9)
    runs = collect_runs(study / "runs")
    summary = summarize(runs.table)
    units = {}
    for (bench, scen), g in runs.table.groupby(["benchmark", "scenario"]):
        cell = make_cell(bench, scen, g, summary[summary["benchmark"] == bench], runs)
        units[bench] = (cell.noun, cell.unit)
        labels = [x.label for x in cell.groups]
        if (bench, scen) == ("benchA", "cl1"):
            assert labels == ["hnet (cr0.1)", "hnet (cr0.5)", "finetune", "scratch"]
    assert units == {"benchA": ("accuracy", "%"), "benchB": ("score", "−MSE")}


# -- a study at scale: a few hundred schema-valid cells from tests/synthetic_runs.py -----------


def test_report_of_a_few_hundred_cells(tmp_path):
    """260 cells (1 benchmark × 2 scenarios × 13 groups × 10 seeds), three of them never run:
    every table has one row per run, group, group × metric or missing cell, and every figure
    the layout allows is there. Behaviour only; docs/development.md says how to time it."""
    from synthetic_runs import BASELINES, HNET_SIZES, SEEDS, run_dir, write_study

    axes = {"benchmarks": ("split_mnist",), "scenarios": ("cl1", "cl3")}
    cells = write_study(tmp_path / "study", **axes)
    n_groups = 2 * (len(HNET_SIZES) + len(BASELINES))
    assert len(cells) == n_groups * len(SEEDS) == 260
    gone = [cells[0], cells[100], cells[-1]]  # cells of the grid whose jobs never ran
    for cell in gone:
        shutil.rmtree(tmp_path / "study" / run_dir(*cell))
    out = tmp_path / "report"
    rep = make_report(tmp_path / "study" / "runs", out, expected=tmp_path / "study" / "grid.json")
    assert rep.n_expected == 260 and len(rep.missing) == 3
    assert all((out / "tables" / name).is_file() for name in TABLES)
    runs = read(out, "runs.csv")
    assert len(runs) == 257 and runs["run_dir"].is_unique
    # cells[-1] is cl3's scratch run of seed 9: the other 12 runs of that seed have no reference
    assert runs["transfer_vs_scratch"].isna().sum() == n_groups // 2 - 1
    summary = read(out, "summary.csv")
    assert len(summary) == n_groups * len(SUMMARY_METRICS)
    assert len(read(out, "summary_wide.csv")) == n_groups
    paired = read(out, "paired_vs_hnet.csv")
    assert len(paired) == n_groups - 2  # every group but the reference, per scenario
    assert set(paired["n_pairs"]) == {9, 10}  # a missing seed drops out of its pair only
    missing = read(out, "missing.csv")
    assert sorted(missing["run_dir"]) == sorted(run_dir(*c) for c in gone)
    assert set(missing["status"]) == {"not started"}
    summary_md = (out / "tables" / "summary.md").read_text()
    assert summary_md.startswith("257 of 260 expected cells finished (study synthetic)")
    expected = set()
    for scen in axes["scenarios"]:
        methods = ["hnet", *BASELINES]
        for kind in figure_kinds_for(methods, list(HNET_SIZES)):
            expected |= {figure_path(kind, "split_mnist", scen, ext) for ext in ("png", "svg")}
    assert figure_files(out) == expected
    assert {p for p in rep.written if "figures" in p.parts} == {out / f for f in expected}


# -- the two transfer controls and FWT where it does not hold ------------------------------------
def control_run(root, scen, method, size, seed, diag, before=0.0):
    """A metrics.json whose R has diagonal ``diag`` (and ``before`` above it), written as a job
    of this code would write it."""
    T = len(diag)
    R = np.array([[diag[j] if j <= i else before for j in range(T)] for i in range(T)])
    b = np.full(T, 5.0)
    sized = method in ("hnet", "hnet_scratch")
    na = metrics.not_applicable(scen)
    m = {
        "benchmark": "benchA",
        "scenario": scen,
        "method": method,
        "size": size if sized else "official",
        "seed": seed,
        "acc_matrix": R.tolist(),
        "acc_init": b.tolist(),
        **metrics.all_metrics(R, b, scenario=scen),
        **({"not_applicable": na} if na else {}),
    }
    d = root / run_dir("benchA", scen, method, size if sized else NO_SIZE, seed)
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps(m))


def test_transfer_against_each_control_and_fwt_not_applicable(tmp_path):
    """hnet runs get transfer_vs_scratch (plain network) and transfer_vs_hnet_scratch (the
    hnet_scratch run of the same size and seed) side by side; plain networks only the first.
    FWT is n/a in CL1 (a number in CL2), with its reason under the table, also for a run written
    before metrics.json recorded it."""
    root = tmp_path / "study"
    for seed in (0, 1):
        for scen in ("cl1", "cl2"):
            control_run(root, scen, "scratch", None, seed, [80.0, 70.0, 60.0], before=40.0 + seed)
            control_run(root, scen, "finetune", None, seed, [82.0, 71.0, 64.0], before=50.0)
            for size, up in (("official", 0.0), ("cr0.5", -3.0)):
                control_run(root, scen, "hnet", size, seed, [85.0 + up, 75.0, 66.0], before=45)
        for size, up in (("official", 0.0), ("cr0.5", -3.0)):
            control_run(root, "cl1", "hnet_scratch", size, seed, [85.0 + up, 72.0 + up, 60.0])
    old = root / run_dir("benchA", "cl1", "finetune", NO_SIZE, 1) / "metrics.json"
    m = json.loads(old.read_text())
    m.pop("not_applicable")
    m["fwt"] = -2.04  # a number written before FWT was declared not applicable in CL1
    old.write_text(json.dumps(m))
    out = tmp_path / "report"
    rep = make_report(root / "runs", out)
    assert not any("hnet_scratch" in n for n in rep.notes)  # CL2 has no hnet_scratch: no note
    runs = read(out, "runs.csv").set_index(["scenario", "method", "size", "seed"])
    for seed in (0, 1):
        h = runs.loc[("cl1", "hnet", "official", seed)]
        assert h["transfer_vs_scratch"] == pytest.approx((5 + 5 + 6) / 3)
        assert h["transfer_vs_hnet_scratch"] == pytest.approx((0 + 3 + 6) / 3)
        h = runs.loc[("cl1", "hnet", "cr0.5", seed)]  # against hnet_scratch of its own size
        assert h["transfer_vs_hnet_scratch"] == pytest.approx((0 + 6 + 6) / 3)  # official's: 2
        assert runs.loc[("cl1", "hnet_scratch", "cr0.5", seed), "transfer_vs_hnet_scratch"] == 0
        f = runs.loc[("cl1", "finetune", NO_SIZE, seed)]
        assert f["transfer_vs_scratch"] == pytest.approx(7 / 3)
        assert np.isnan(f["transfer_vs_hnet_scratch"])  # a plain network: scratch is its control
        assert np.isnan(runs.loc[("cl2", "hnet", "official", seed), "transfer_vs_hnet_scratch"])
        for method, size in (("finetune", NO_SIZE), ("hnet", "official")):
            assert np.isnan(runs.loc[("cl1", method, size, seed), "fwt"])
            assert runs.loc[("cl1", method, size, seed), "fwt_na"].startswith("CL1: ")
            assert np.isfinite(runs.loc[("cl2", method, size, seed), "fwt"])
    summary = read(out, "summary.csv")
    fwt = summary[summary["metric"] == "fwt"].set_index("scenario")["not_applicable"]
    assert (fwt["cl1"] == metrics.FWT_NOT_APPLICABLE["cl1"]).all()
    assert fwt["cl2"].isna().all()
    best = summary[summary["best"] & (summary["metric"] == "acc_final")]
    assert "hnet_scratch" not in set(best["method"])  # a control, not a contender
    md = (out / "tables" / "summary.md").read_text()
    cl1, cl2 = md.split("## benchA / cl2")
    assert "| FWT |" in cl1 and "| transfer vs hnet_scratch |" in cl1
    assert cl1.count("n/a") == 8 and f"FWT n/a: {metrics.FWT_NOT_APPLICABLE['cl1']}." in cl1
    assert "n/a" not in cl2
    assert "against `hnet_scratch`, a hypernetwork of the same size" in md
    tex = (out / "tables" / "summary.tex").read_text()
    assert "n/a" in tex and "% FWT n/a: CL1" in tex
