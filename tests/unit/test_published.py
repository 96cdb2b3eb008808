"""Published results beside ours: the data file and its checks (hnet.report.published), the
summary's published column (hnet.report.published_column) and the tables it reaches.

The column is tested on a synthetic summary and synthetic published records (not the bundled
numbers), so each assertion follows from the inputs: the difference is measured − published,
the family matches Fashion-MNIST runs to MNIST numbers, the record with the fewest protocol
differences is shown, and the protocol flag appears exactly when a field differs."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from dataclasses import replace

import pandas as pd
import pytest

from hnet.errors import ConfigError
from hnet.report import published, published_column, tables
from hnet.report.build import TableWriter, write_tables
from hnet.report.runs import KEYS, collect_runs
from hnet.study import catalog

# -- the bundled data file ---------------------------------------------------------------------


def test_bundled_file_validates_and_every_entry_has_every_field():
    records = published.load()
    assert len(records) >= 50
    cat = catalog.load()
    methods = set(cat["methods"]) | set(published.PARALLEL_METHODS)
    for r in records:
        assert r.method in methods
        assert r.hnet_benchmark in cat["benchmarks"]
        assert r.scenario in cat["benchmarks"][r.hnet_benchmark]["scenarios"]
        assert r.family == published.family(r.hnet_benchmark)
        assert r.metric == "acc_final"
        assert 0 <= r.value <= 100
        assert r.std is None or (0 <= r.std <= 100 and r.spread)
        assert r.n_runs is None or r.n_runs >= 1
        for text in (r.source, r.where, r.benchmark, r.original_method, r.cite, r.repository):
            assert text.strip()
        assert len(r.commit) == 40
        p = r.protocol
        assert p.dataset and p.tasks >= 1 and p.network and p.optimizer
        assert (p.epochs_per_task is None) != (p.iters_per_task is None)
        assert p.buffer is None or p.buffer >= 0
    # the families the study benchmarks belong to are covered in every scenario
    covered = {(r.family, r.scenario) for r in records}
    for fam in ("split_mnist", "permuted_mnist"):
        assert {(fam, s) for s in ("cl1", "cl2", "cl3")} <= covered


def test_loader_is_torch_and_pandas_free():
    code = (
        "import sys; from hnet.report import published; published.load(); "
        "assert 'torch' not in sys.modules and 'pandas' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def minimal_table(**changes):
    table = {
        "id": "t1",
        "cite": "Someone et al. 2020",
        "source": "Someone et al. 2020, A paper",
        "repository": "someone/repo",
        "commit": "0" * 40,
        "where": "README.md, Results",
        "benchmark": "Split MNIST",
        "hnet_benchmark": "split_mnist",
        "metric": "acc_final",
        "n_runs": 5,
        "spread": "std",
        "protocol": {
            "dataset": "MNIST",
            "tasks": 5,
            "network": "MLP 400-400",
            "hidden": [400, 400],
            "iters_per_task": 2000,
            "batch_size": 128,
            "optimizer": "Adam",
            "buffer": None,
            "notes": "",
        },
        "columns": {"cl1": "Task-IL", "cl3": "Class-IL"},
        "rows": [{"method": "finetune", "original": "SGD", "cl1": [95.0, 1.0], "cl3": 19.5}],
    }
    table.update(changes)
    return {"tables": [table]}


def test_a_table_flattens_into_one_record_per_number_with_row_overrides():
    data = minimal_table()
    data["tables"][0]["rows"].append(
        {
            "method": "replay",
            "original": "ER",
            "buffer": 500,
            "epochs_per_task": 1,
            "cl1": None,
            "cl3": 80.0,
        }
    )
    records = published.parse(data)
    assert [(r.method, r.scenario, r.value, r.std) for r in records] == [
        ("finetune", "cl1", 95.0, 1.0),
        ("finetune", "cl3", 19.5, None),
        ("replay", "cl3", 80.0, None),
    ]
    er = records[2].protocol
    assert (er.buffer, er.epochs_per_task, er.iters_per_task) == (500, 1.0, None)
    assert records[0].protocol.buffer is None and records[0].protocol.iters_per_task == 2000
    assert records[0].where.endswith("column 'Task-IL'")


def _mutate(path, value):
    data = minimal_table()
    node = data["tables"][0]
    *parents, last = path
    for p in parents:
        node = node[p]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("source",), KeyError, "missing source"),
        (("source",), "  ", "source must be non-empty"),
        (("where",), "", "where must be non-empty"),
        (("hnet_benchmark",), "split_imagenet", "is not an hnet benchmark"),
        (("columns",), {"cl4": "x"}, "scenario 'cl4'"),
        (("rows", 0, "method"), "dream_replay", "is not an hnet method"),
        (("rows", 0, "cl1"), [101.0, 1.0], "0 to 100"),
        (("rows", 0, "cl3"), -1, "0 to 100"),
        (("rows", 0, "cl1"), [95.0, -0.5], "spread -0.5"),
        (("rows", 0, "cl1"), [95.0, 1.0, 3], "[value, spread]"),
        (("rows", 0, "cl3"), KeyError, "missing cl3"),
        (("spread",), None, "needs the table's `spread`"),
        (("n_runs",), 0, "n_runs 0"),
        (("metric",), "bwt", "only acc_final"),
        (("commit",), "abc", "40-digit"),
        (("repository",), "no-slash", "owner/name"),
        (("protocol", "epochs_per_task"), 4, "exactly one of"),
        (("protocol", "iters_per_task"), KeyError, "exactly one of"),
        (("protocol", "hidden"), [400, 0], "positive widths"),
        (("protocol", "tasks"), KeyError, "missing tasks"),
        (("protocol", "buffer"), -3, "buffer -3"),
        (("rows", 0, "colour"), "red", "unknown key(s) colour"),
    ],
)
def test_bad_entries_are_refused_naming_the_key(path, value, named):
    with pytest.raises(ConfigError, match="table 't1'") as e:
        published.parse(_mutate(path, value), "published.yaml")
    assert named in str(e.value)


def test_duplicate_ids_and_parallel_methods():
    data = minimal_table()
    data["tables"].append(copy.deepcopy(data["tables"][0]))
    with pytest.raises(ConfigError, match="used twice"):
        published.parse(data)
    for method in published.PARALLEL_METHODS:  # accepted before their registration lands
        assert published.parse(_mutate(("rows", 0, "method"), method))[0].method == method


# -- the column on a synthetic summary ---------------------------------------------------------

OURS = published_column.RunProtocol(
    dataset="MNIST",
    tasks=5,
    network="MLP 400-400",
    hidden=(400, 400),
    epochs_per_task=None,
    iters_per_task=2000,
    batch_size=128,
    buffer=None,
)


def summary_frame(groups):
    """A long summary (tables.summarize's columns) with acc_final means and stds per group."""
    rows = []
    for (bench, scen, method, size), mean, std in groups:
        for metric in tables.SUMMARY_METRICS:
            value = mean if metric == "acc_final" else 1.0
            rows.append(
                dict(benchmark=bench, scenario=scen, method=method, size=size, n_seeds=3)
                | dict(metric=metric, n=3, mean=value, std=std, ci95=0.5, best=False)
                | {"not_applicable": ""}
            )
    return pd.DataFrame(rows)


def records_for_column():
    data = minimal_table(
        rows=[
            {"method": "finetune", "original": "SGD", "cl1": [93.0, 2.0], "cl3": 19.5},
            {"method": "hnet", "original": "HNET", "cl1": 99.5, "cl3": None},
        ]
    )
    far = copy.deepcopy(data["tables"][0])  # the same methods under another protocol, listed first
    far.update(id="t0", cite="Far et al. 2019")
    far["protocol"] |= {"hidden": [100, 100], "iters_per_task": None, "epochs_per_task": 1}
    far["rows"] = [{"method": "finetune", "original": "SGD", "cl1": 90.0, "cl3": None}]
    data["tables"].insert(0, far)
    return published.parse(data)


GROUPS = [
    (("split_mnist", "cl1", "hnet", "official"), 99.0, 0.2),
    (("split_mnist", "cl1", "hnet", "cr0.5"), 98.0, 0.3),
    (("split_mnist", "cl1", "finetune", "none"), 95.5, 1.5),
    (("split_fmnist", "cl3", "finetune", "none"), 18.0, 0.4),
    (("split_mnist", "cl3", "ewc", "none"), 20.0, 0.1),  # no published ewc
    (("permuted_mnist", "cl1", "finetune", "none"), 80.0, 2.0),  # other family
]


@pytest.fixture
def matched():
    summary = summary_frame(GROUPS)
    protocols = {g: OURS for g, _, _ in GROUPS}
    return summary, published_column.compare(summary, protocols, records_for_column())


def test_column_matches_by_family_scenario_and_method_and_subtracts(matched):
    _, m = matched
    shown = published_column.shown(m)
    assert set(shown) == {g for g, _, _ in GROUPS[:4]}
    for g, mean, _ in GROUPS[:4]:
        r = shown[g]
        assert r.diff == pytest.approx(mean - r.published)
        assert r.measured == mean
    assert shown[GROUPS[2][0]].published == 93.0  # t1, the same protocol, beats t0 listed first
    assert shown[GROUPS[3][0]].published == 19.5  # split_fmnist meets Split MNIST's number
    both = m[(m["method"] == "finetune") & (m["scenario"] == "cl1")]
    assert list(both["rank"]) == [0, 1] and list(both["table"]) == ["t1", "t0"]


def test_protocol_flag_only_where_a_field_differs(matched):
    _, m = matched
    shown = published_column.shown(m)
    same = shown[("split_mnist", "cl1", "finetune", "none")]
    assert not same.protocol_differs and same.protocol_differences == ""
    fmnist = shown[("split_fmnist", "cl3", "finetune", "none")]
    assert fmnist.protocol_differs
    assert fmnist.protocol_differences == "data Fashion-MNIST vs MNIST"
    far = m[m["table"] == "t0"].iloc[0]
    assert (
        far.protocol_differences
        == "network MLP 400-400 vs MLP 100-100; 2000 steps/task vs 1 epochs/task"
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (dict(iters_per_task=500), "500 steps/task vs 2000 steps/task"),
        (dict(iters_per_task=None, epochs_per_task=4.0), "4 epochs/task vs 2000 steps/task"),
        (dict(hidden=(64, 64), network="MLP 64-64"), "network MLP 64-64 vs MLP 400-400"),
        (dict(hidden=None, network="resnet32"), "network resnet32 vs MLP 400-400"),
        (dict(tasks=10), "10 vs 5 tasks"),
        (dict(batch_size=32), "batch 32 vs 128"),
        (dict(buffer=500), "buffer 500 vs none"),
    ],
)
def test_each_protocol_field_is_compared(change, expected):
    theirs = records_for_column()[1].protocol  # t1's finetune: OURS' protocol
    assert published_column.differences(OURS, theirs, "split_mnist") == []
    assert published_column.differences(replace(OURS, **change), theirs, "split_mnist") == [
        expected
    ]
    unknown = published_column.differences(None, theirs, "split_fmnist")
    assert unknown[0] == "data Fashion-MNIST vs MNIST" and "unknown" in unknown[1]


def test_run_protocol_reads_the_config_in_metrics_json():
    m = {
        "benchmark": "split_fmnist",
        "acc_matrix": [[1.0] * 5] * 5,
        "config": {
            "target": {"kind": "mlp", "hidden": [400, 400]},
            "train": {"iters": 500, "epochs": 0, "batch_size": 128},
            "buffer": {"size": 500},
        },
    }
    p = published_column.run_protocol(m)
    assert (p.dataset, p.tasks, p.hidden, p.iters_per_task, p.batch_size, p.buffer) == (
        "Fashion-MNIST",
        5,
        (400, 400),
        500,
        128,
        500,
    )
    m["config"]["train"]["epochs"] = 3
    assert published_column.run_protocol(m).training() == "3 epochs/task"


def test_summary_tables_show_the_column_beside_acc_final(matched):
    summary, m = matched
    md = tables.summary_markdown(summary, published=m)
    assert published_column.INTRO in md
    assert published_column.INTRO not in tables.summary_markdown(summary)
    section = md.split("## split_mnist / cl1")[1].split("##")[0]
    header = next(line for line in section.splitlines() if line.startswith("| method"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    at = cols.index("ACC final")
    assert cols[at + 1 : at + 3] == list(published_column.HEADERS)
    row = next(line for line in section.splitlines() if line.startswith("| finetune"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[at + 1] == "93.00 ± 2.00 [1]"  # same protocol: no mark
    assert cells[at + 2] == f"{95.5 - 93.0:+.2f}"
    ewc_section = md.split("## split_mnist / cl3")[1]
    assert "Δ vs published" not in ewc_section.split("##")[0]  # nothing published there
    fm = md.split("## split_fmnist / cl3")[1]
    assert (
        "19.50 [1]†" in fm
        and "† protocol differs (ours vs theirs): data Fashion-MNIST vs MNIST" in fm
    )
    note = "[1] Someone et al. 2020, someone/repo: README.md, Results; column 'Class-IL'"
    assert f"{note} (5 run(s); ± is std)." in fm
    tex = tables.summary_latex(summary, m)
    assert "19.50 [1]$^\\dagger$" in tex and "$\\Delta$ vs published" in tex


def test_wide_table_gets_the_columns_after_acc_final(matched):
    summary, m = matched
    wide = published_column.attach(tables.summary_wide(summary), m)
    cols = list(wide.columns)
    at = cols.index("acc_final_best") + 1
    assert cols[at : at + len(published_column.WIDE_COLUMNS)] == published_column.WIDE_COLUMNS
    row = wide.set_index(KEYS).loc[("split_fmnist", "cl3", "finetune", "none")]
    assert row["published_acc_final"] == 19.5
    assert row["published_diff"] == pytest.approx(18.0 - 19.5)
    assert row["published_protocol"] == "data Fashion-MNIST vs MNIST"
    assert bool(row["published_protocol_differs"])
    ewc = wide.set_index(KEYS).loc[("split_mnist", "cl3", "ewc", "none")]
    assert math.isnan(ewc["published_acc_final"]) and ewc["published_source"] == ""


def test_report_tables_read_each_groups_protocol_from_its_runs(tmp_path):
    """write_tables end to end on two runs: their configs decide the protocol flag."""
    R = [[99.0, 10.0], [98.0, 97.0]]
    for method, iters in (("finetune", 2000), ("joint", 500)):
        d = tmp_path / "runs" / method
        d.mkdir(parents=True)
        m = {
            "benchmark": "split_mnist",
            "scenario": "cl1",
            "method": method,
            "seed": 0,
            "acc_matrix": R,
            "acc_init": [50.0, 50.0],
            "acc_final": 97.5,
            "config": {
                "target": {"kind": "mlp", "hidden": [400, 400]},
                "train": {"iters": iters, "epochs": 0, "batch_size": 128},
            },
        }
        (d / "metrics.json").write_text(json.dumps(m))
    runs = collect_runs(tmp_path / "runs")
    protocols = published_column.run_protocols(tmp_path / "runs", runs.table)
    w = TableWriter(tmp_path / "tables")
    write_tables(w, runs, None, None, None, protocols)
    shown = pd.read_csv(tmp_path / "tables" / "published.csv").query("shown")
    by_method = shown.set_index("method")
    # both methods have Split MNIST numbers; each flag compares that run's own steps per task
    for method, iters in (("finetune", 2000), ("joint", 500)):
        differences = str(by_method.loc[method, "protocol_differences"])
        assert f"{iters} steps/task vs" in differences
        assert by_method.loc[method, "diff"] == pytest.approx(
            97.5 - by_method.loc[method, "published"]
        )
    assert "| finetune |" in (tmp_path / "tables" / "published.md").read_text()


def test_a_rehearsal_group_meets_the_number_at_its_own_buffer():
    """Equal memory first: the record with the group's buffer wins over one that differs in
    nothing but the buffer."""
    data = minimal_table(
        rows=[
            {"method": "replay", "original": "ER", "buffer": 200, "cl1": 90.0, "cl3": 70.0},
            {
                "method": "replay",
                "original": "ER",
                "buffer": 500,
                "batch_size": 10,
                "cl1": 95.0,
                "cl3": 80.0,
            },
        ]
    )
    records = published.parse(data)
    group = ("split_mnist", "cl3", "replay", "none")
    summary = summary_frame([(group, 82.0, 1.0)])
    for buffer, value, differs in ((500, 80.0, "batch 128 vs 10"), (200, 70.0, "")):
        ours = {group: replace(OURS, buffer=buffer)}
        m = published_column.shown(published_column.compare(summary, ours, records))[group]
        assert (m.published, m.protocol_differences) == (value, differs)
        assert m.diff == pytest.approx(82.0 - value)
