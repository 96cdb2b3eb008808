"""Summary and paired-comparison tables of ``hnet report`` (pure functions of the runs table)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from hnet.metrics import METRICS, TRANSFER_CONTROLS
from hnet.report import published_column
from hnet.report.numbers import fixed, or_dash
from hnet.report.runs import CONTROLS, KEYS, NA_METRICS, NA_SUFFIX, REFERENCE, size_key, sort_groups
from hnet.report.stats import holm

SUMMARY_METRICS = [m.name for m in METRICS if m.summarized]
WIDE_STATS = ("mean", "std", "ci95", "best")
#: +1: higher is better, −1: lower is better, 0: not ranked (no bold)
DIRECTION = {m.name: m.direction for m in METRICS}
#: the from-scratch controls (runs.CONTROLS) learn every task alone: a scratch run's matrix is
#: meaningful on its diagonal only, and hnet_scratch keeps one hypernetwork per task; they compete
#: for these columns only
SCRATCH_RANKED = ("acc_during", "train_seconds")
LABELS = {m.name: m.label for m in METRICS}
#: what each transfer number is measured against (the tables' note says it)
TRANSFER_NOTE = (
    "Transfer = mean over tasks of (score right after learning a task − the control's score on "
    "it trained alone), with the control named in the column: "
    f"{LABELS[TRANSFER_CONTROLS['scratch']]} against `scratch`, a plain network of the target's "
    "architecture trained on each task alone (a new one per task); "
    f"{LABELS[TRANSFER_CONTROLS['hnet_scratch']]} against `hnet_scratch`, a hypernetwork of the "
    "same size trained on each task alone (the paper's control; hypernetwork methods only, "
    "matched by size and seed). The first mixes in the parameterisation, the second holds it "
    "fixed."
)


def mean_std_ci(values: np.ndarray) -> tuple[int, float, float, float]:
    """n, mean, sample std and 95 % CI half-width (Student t) of the finite values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return 0, math.nan, math.nan, math.nan
    mean = float(np.mean(v))
    if n == 1:
        return 1, mean, math.nan, math.nan
    std = float(np.std(v, ddof=1))
    return n, mean, std, float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n))


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Long table: one row per group × metric with n, mean, std, ci95 and the ``best`` flag."""
    rows = []
    for key, g in runs.groupby(KEYS, sort=False):
        for metric in SUMMARY_METRICS:
            n, mean, std, ci = mean_std_ci(g[metric].to_numpy())
            rows.append(
                dict(
                    zip(KEYS, key, strict=False),
                    n_seeds=g["seed"].nunique(),
                    metric=metric,
                    n=n,
                    mean=mean,
                )
                | {"std": std, "ci95": ci, "not_applicable": _not_applicable(g, metric)}
            )
    out = sort_groups(pd.DataFrame(rows))  # stable: metrics stay in SUMMARY_METRICS order
    out["best"] = _best(out)
    return out[[*KEYS, "n_seeds", "metric", "n", "mean", "std", "ci95", "best", "not_applicable"]]


def _not_applicable(g: pd.DataFrame, metric: str) -> str:
    """Why ``metric`` is not a number for any run of the group ('' if it is for some run)."""
    if metric not in NA_METRICS or (g[metric].notna()).any():
        return ""
    reasons = sorted(set(g[metric + NA_SUFFIX].fillna("")) - {""})
    return "; ".join(reasons)


def _best(s: pd.DataFrame) -> pd.Series:
    """True on the best mean per benchmark × scenario × metric (ties all marked)."""
    best = pd.Series(False, index=s.index)
    for (_, _, metric), g in s.groupby(["benchmark", "scenario", "metric"], sort=False):
        sign = DIRECTION[metric]
        if sign == 0:
            continue
        ok = g[np.isfinite(g["mean"])]
        if metric not in SCRATCH_RANKED:
            ok = ok[~ok["method"].isin(CONTROLS)]
        if len(ok) < 2:  # a single contender is not "best" of anything
            continue
        target = ok["mean"].max() if sign > 0 else ok["mean"].min()
        best[ok.index[ok["mean"] == target]] = True
    return best


def summary_wide(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per group, columns ``<metric>_mean|_std|_ci95|_best`` for every summary metric
    (the long table pivoted, for readers and spreadsheets)."""
    rows = []
    for key, g in summary.groupby(KEYS, sort=False):
        row = dict(zip(KEYS, key, strict=True)) | {"n_seeds": int(g["n_seeds"].iloc[0])}
        cells = {r.metric: r for r in g.itertuples()}
        for m in SUMMARY_METRICS:
            r = cells[m]
            row |= {f"{m}_mean": r.mean, f"{m}_std": r.std, f"{m}_ci95": r.ci95}
            row[f"{m}_best"] = bool(r.best)
        rows.append(row)
    cols = [*KEYS, "n_seeds"] + [f"{m}_{s}" for m in SUMMARY_METRICS for s in WIDE_STATS]
    return pd.DataFrame(rows, columns=cols)


def _wide(summary: pd.DataFrame):
    """Per benchmark × scenario: (bench, scen, columns, rows of (method, size, n_seeds,
    {metric: row}), {label: why not applicable}). A column is shown when some group has a number
    in it or it is not applicable ("n/a", its reason in the table's note)."""
    for (bench, scen), g in summary.groupby(["benchmark", "scenario"], sort=False):
        groups = []
        for (method, size), h in g.groupby(["method", "size"], sort=False):
            cells = {r.metric: r for r in h.itertuples()}
            groups.append((method, size, int(h["n_seeds"].iloc[0]), cells))
        na = g[g["not_applicable"].fillna("") != ""]
        cols = [
            m
            for m in SUMMARY_METRICS
            if g.loc[g["metric"] == m, "n"].sum() > 0 or (na["metric"] == m).any()
        ]
        why = {
            LABELS[r.metric]: r.not_applicable for r in na.drop_duplicates("metric").itertuples()
        }
        yield bench, scen, cols, groups, why


def _cell(r, bold: tuple[str, str], pm: str) -> str:
    if getattr(r, "not_applicable", ""):
        return "n/a"
    if not np.isfinite(r.mean):
        return "–"
    digits = 3 if r.metric == "compression_ratio" else 2
    text = fixed(r.mean, digits) + (f"{pm}{fixed(r.std, digits)}" if np.isfinite(r.std) else "")
    return f"{bold[0]}{text}{bold[1]}" if r.best else text


def summary_markdown(
    summary: pd.DataFrame, head: str | None = None, published: pd.DataFrame | None = None
) -> str:
    """``head``: a first line (the workflow's "N of M expected cells finished"); ``published``:
    published_column.compare's matches, shown beside the final accuracy with their notes."""
    lines = [] if head is None else [head, ""]
    lines += [
        "# Summary",
        "",
        "mean ± std over seeds (n = number of seeds); **bold**: best per benchmark × scenario "
        "(max for accuracies, BWT, FWT, transfer; min for forgetting and training time). "
        "The from-scratch controls (scratch, hnet_scratch) compete only for ACC during and "
        "train s (they learn every task alone). 95 % CIs are in summary.csv. n/a: the metric's "
        "definition does not hold here (the reason is under the table; docs/metrics.md); –: no "
        "number.",
        "",
        TRANSFER_NOTE,
    ]
    if published is not None and not published.empty:
        lines += ["", published_column.INTRO]
    for bench, scen, cols, groups, why in _wide(summary):
        pub = published_column.has_any(published, bench, scen)
        lines += ["", f"## {bench} / {scen}", ""]
        heads = _with_published([LABELS[c] for c in cols], cols, pub)
        lines.append("| method | size | n | " + " | ".join(heads) + " |")
        lines.append("|---|---|---:|" + "---:|" * len(heads))
        for method, size, n, cells in groups:
            vals = [_cell(cells[c], ("**", "**"), " ± ") for c in cols]
            if pub:
                extra = published_column.cells(published, (bench, scen, method, size))
                vals = _with_published(vals, cols, pub, extra)
            lines.append(f"| {method} | {size} | {n} | " + " | ".join(vals) + " |")
        if why:
            lines.append("")
            lines += [f"{label} n/a: {reason}." for label, reason in why.items()]
        if pub:
            lines += ["", *published_column.notes(published, bench, scen)]
    return "\n".join(lines) + "\n"


def _with_published(
    items: list[str], cols: list[str], pub: bool, extra: tuple[str, ...] = published_column.HEADERS
) -> list[str]:
    """``items`` (one per metric column) with ``extra`` right after the final accuracy's."""
    if not pub or "acc_final" not in cols:
        return items
    at = cols.index("acc_final") + 1
    return [*items[:at], *extra, *items[at:]]


def _tex(s: str) -> str:
    return s.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%")


TEX_HEADERS = ("published", "$\\Delta$ vs published")  # published_column.HEADERS in LaTeX


def summary_latex(summary: pd.DataFrame, published: pd.DataFrame | None = None) -> str:
    out = ["% hnet report: mean $\\pm$ std over seeds; best per benchmark x scenario in bold"]
    out += ["% " + TRANSFER_NOTE]
    for bench, scen, cols, groups, why in _wide(summary):
        pub = published_column.has_any(published, bench, scen)
        heads = _with_published([_tex(LABELS[c]) for c in cols], cols, pub, TEX_HEADERS)
        out += [
            "",
            f"% {bench} / {scen}",
            "\\begin{tabular}{ll r" + " r" * len(heads) + "}",
            "\\toprule",
            f"\\multicolumn{{{len(heads) + 3}}}{{l}}{{{_tex(bench)} / {_tex(scen)}}} \\\\",
            "\\midrule",
            "method & size & n & " + " & ".join(heads) + " \\\\",
            "\\midrule",
        ]
        for method, size, n, cells in groups:
            vals = [_cell(cells[c], ("\\textbf{", "}"), " $\\pm$ ") for c in cols]
            if pub:
                extra = published_column.cells(
                    published, (bench, scen, method, size), " $\\pm$ ", "$^\\dagger$"
                )
                vals = _with_published(vals, cols, pub, extra)
            out.append(f"{_tex(method)} & {_tex(size)} & {n} & " + " & ".join(vals) + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}"]
        out += [f"% {label} n/a: {reason}." for label, reason in why.items()]
        if pub:
            out += [f"% {line}" for line in published_column.notes(published, bench, scen)]
    return "\n".join(out) + "\n"


PAIRED_COLUMNS = [
    *KEYS,
    "hnet_size",
    "n_pairs",
    "seeds",
    "method_acc_final",
    "hnet_acc_final",
    "diff_mean",
    "diff_ci95",
    "diff_ci_low",
    "diff_ci_high",
    "p_value",
    "p_holm",
]


def reference_size(summary: pd.DataFrame, bench: str, scen: str, hnet_ref: str | None) -> str:
    """The hnet size baselines are compared with in one benchmark × scenario ('' = none):
    ``hnet_ref`` when given (studies pass the one their config fixes), else ``official``, else
    the first size in report order. Never the best one: a reference picked after seeing the
    results would bias every comparison against it."""
    acc = summary[
        (summary["benchmark"] == bench)
        & (summary["scenario"] == scen)
        & (summary["method"] == REFERENCE)
        & (summary["metric"] == "acc_final")
        & np.isfinite(summary["mean"])
    ]
    if hnet_ref is not None:
        return hnet_ref if hnet_ref in set(acc["size"]) else ""
    if acc.empty:
        return ""
    return min(map(str, acc["size"]), key=size_key)  # official first, then cr ascending


def paired_vs_hnet(
    runs: pd.DataFrame, summary: pd.DataFrame, hnet_ref: str | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """acc_final of every other group minus the reference hnet's, paired by seed; p-values
    Holm-adjusted within each benchmark × scenario (``p_holm``)."""
    rows, notes = [], []
    first = runs.drop_duplicates([*KEYS, "seed"], keep="first")
    for (bench, scen), g in first.groupby(["benchmark", "scenario"], sort=False):
        ref = reference_size(summary, bench, scen, hnet_ref)
        if not ref:
            what = f"hnet size {hnet_ref!r}" if hnet_ref else "hnet runs"
            notes.append(f"skipped paired comparison for {bench}/{scen}: no {what}")
            continue
        h = g[(g["method"] == REFERENCE) & (g["size"] == ref)].set_index("seed")["acc_final"]
        first = len(rows)
        for (method, size), m in g.groupby(["method", "size"], sort=False):
            if method == REFERENCE and size == ref:
                continue
            a = m.set_index("seed")["acc_final"]
            seeds = sorted(set(a.dropna().index) & set(h.dropna().index))
            d = np.array([a[s] - h[s] for s in seeds], dtype=float)
            n, mean, _, ci = mean_std_ci(d)
            p = math.nan
            if n >= 2:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # constant differences: p is NaN
                    p = float(stats.ttest_rel(a[seeds], h[seeds]).pvalue)
            rows.append(
                dict(zip(KEYS, (bench, scen, method, size), strict=False))
                | {
                    "hnet_size": ref,
                    "n_pairs": n,
                    "seeds": " ".join(map(str, seeds)),
                    "method_acc_final": float(np.mean(a[seeds])) if n else math.nan,
                    "hnet_acc_final": float(np.mean(h[seeds])) if n else math.nan,
                    "diff_mean": mean,
                    "diff_ci95": ci,
                    "diff_ci_low": mean - ci,
                    "diff_ci_high": mean + ci,
                    "p_value": p,
                }
            )
        table = rows[first:]  # one benchmark × scenario: the family Holm adjusts over
        for r, adjusted in zip(table, holm([r["p_value"] for r in table]), strict=True):
            r["p_holm"] = adjusted
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS), notes


def paired_markdown(paired: pd.DataFrame) -> str:
    lines = [
        "# acc_final vs hnet (paired by seed)",
        "",
        "Difference = method − hnet on the seeds both have; 95 % CI from Student t; p from a "
        "paired t-test (scipy.stats.ttest_rel). p (Holm): p adjusted for the number of "
        "comparisons in each benchmark × scenario table by Holm's step-down method, which keeps "
        "the chance of any false positive in that table at the nominal level; judge "
        "significance by it. The hnet reference (column 'hnet size') is fixed before the "
        "results: the study's report.hnet_reference (hnet report --hnet-ref), else 'official', "
        "else the first size.",
    ]
    if paired.empty:
        return "\n".join([*lines, "", "No comparisons: no hnet runs."]) + "\n"

    for (bench, scen), g in paired.groupby(["benchmark", "scenario"], sort=False):
        lines += [
            "",
            f"## {bench} / {scen} (vs hnet {g['hnet_size'].iloc[0]})",
            "",
            "| method | size | hnet size | n | method acc | hnet acc | diff | 95 % CI | p "
            "| p (Holm) |",
            "|---|---|---|---:|---:|---:|---:|---|---:|---:|",
        ]
        for r in g.itertuples():
            f = or_dash
            ci = f"[{f(r.diff_ci_low)}, {f(r.diff_ci_high)}]" if np.isfinite(r.diff_ci95) else "–"
            lines.append(
                f"| {r.method} | {r.size} | {r.hnet_size} | {r.n_pairs} | "
                f"{f(r.method_acc_final)} | {f(r.hnet_acc_final)} | {f(r.diff_mean)} | {ci} | "
                f"{f(r.p_value, 3)} | {f(r.p_holm, 3)} |"
            )
    return "\n".join(lines) + "\n"


def missing_markdown(missing: pd.DataFrame | None, n_expected: int | None) -> str:
    """missing.md: the expected cells without a result, grouped by status (``missing`` None:
    no grid file was given, so nothing could be checked)."""
    lines = ["# Missing cells", ""]
    if missing is None or n_expected is None:
        lines.append(
            "No grid file was given (`hnet report --expected GRID_JSON`), so expected cells "
            "could not be checked."
        )
        return "\n".join(lines) + "\n"
    if missing.empty:
        return "\n".join([*lines, f"All {n_expected} expected cells finished."]) + "\n"
    counts = missing["status"].value_counts()
    lines += [
        f"{len(missing)} of {n_expected} expected cells have no result: "
        + ", ".join(f"{n} {s}" for s, n in counts.sort_index().items())
        + ".",
        "",
        "failed: the job raised an error (failed.json); running: its job is alive (a fresh "
        "heartbeat); interrupted: stopped, rerunning resumes it from its checkpoint; not "
        "started: nothing in its run directory yet; unreadable: its metrics.json could not be "
        "read. The states are hnet status's.",
        "",
        "| benchmark | scenario | method | size | seed | status | error | message | run dir |",
        "|---|---|---|---|---:|---|---|---|---|",
    ]

    def md(v) -> str:
        return str(v).replace("|", "\\|")

    for r in missing.itertuples():
        lines.append(
            f"| {r.benchmark} | {r.scenario} | {r.method} | {r.size} | {r.seed} | {r.status} | "
            f"{md(r.error)} | {md(r.message)} | {md(r.run_dir)} |"
        )
    return "\n".join(lines) + "\n"
