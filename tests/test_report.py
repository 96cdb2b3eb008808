"""``hnet report``: tables, paired comparisons and figures from real (tiny) run directories."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from hnet.errors import HnetError
from hnet.report import collect_runs, make_report

SEEDS = (0, 1, 2)
GRID = (("hnet", "official"), ("hnet", "cr0.5"), ("finetune", None), ("scratch", None))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from hnet.config import resolve
    from hnet.train import run_job

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
    assert set(runs.loc[runs["method"] != "hnet", "size"]) == {"-"}
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
    _, out = report
    runs, paired = read(out, "runs.csv"), read(out, "paired_vs_hnet.csv")
    acc = runs.groupby(["method", "size"])["acc_final"].mean()
    ref = "official" if acc["hnet", "official"] >= acc["hnet", "cr0.5"] else "cr0.5"
    assert set(paired["hnet_size"]) == {ref}
    other = "cr0.5" if ref == "official" else "official"
    assert {(m, s) for m, s in zip(paired["method"], paired["size"], strict=False)} == {
        ("hnet", other),
        ("finetune", "-"),
        ("scratch", "-"),
    }
    h = runs[(runs["method"] == "hnet") & (runs["size"] == ref)].set_index("seed")["acc_final"]
    for r in paired.itertuples():
        a = runs[(runs["method"] == r.method) & (runs["size"] == r.size)]
        d = a.set_index("seed")["acc_final"] - h
        assert r.n_pairs == 3 and r.seeds == "0 1 2"
        assert r.diff_mean == pytest.approx(d.mean())
        assert r.diff_ci_high - r.diff_mean == pytest.approx(r.diff_ci95)
        assert 0 <= r.p_value <= 1
    assert (out / "tables" / "paired_vs_hnet.md").read_text().count("\n| ") == 4


def test_figures(report):
    rep, out = report
    names = [
        "acc_final",
        "forgetting",
        "acc_vs_compression",
        "matrix_split_digits_cl1_hnet_official",
        "matrix_split_digits_cl1_hnet_cr0.5",
        "matrix_split_digits_cl1_finetune_-",
        "matrix_split_digits_cl1_scratch_-",
    ]
    for name in names:
        png = out / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert png.stat().st_size > 5000
        assert (out / "figures" / f"{name}.svg").stat().st_size > 0
    assert rep.notes == []


def test_rerun_is_identical(results, report, tmp_path):
    _, out = report
    make_report(results, tmp_path)
    for name in ("runs.csv", "summary.csv", "summary.md", "summary.tex", "paired_vs_hnet.csv"):
        assert (tmp_path / "tables" / name).read_bytes() == (out / "tables" / name).read_bytes()


def test_partial_inputs(results, tmp_path):
    """One seed, no scratch, no hnet: what can be produced is, the rest is a note."""
    src = tmp_path / "in"
    shutil.copytree(results / "finetune-base" / "seed0", src / "ft")
    rep = make_report(src, tmp_path / "out")
    assert any("transfer_vs_scratch" in n for n in rep.notes)
    assert any("paired comparison" in n for n in rep.notes)
    assert any("acc_vs_compression" in n for n in rep.notes)
    summary = read(tmp_path / "out", "summary.csv")
    assert summary.loc[summary["metric"] == "acc_final", "ci95"].isna().all()
    assert (tmp_path / "out" / "figures" / "acc_final.png").exists()


def test_empty_dir(tmp_path):
    (tmp_path / "run" / "state").mkdir(parents=True)
    (tmp_path / "run" / "state" / "metrics.json").write_text("{}")
    with pytest.raises(HnetError, match=f"No metrics.json found under {tmp_path}"):
        make_report(tmp_path)


def test_cli(results, tmp_path, capsys):
    from hnet.cli import main

    assert main(["report", str(results), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "tables" / "summary.md").exists()
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "No metrics.json" in capsys.readouterr().err
