"""Selection of swept values (hnet.study.select) and Holm's adjustment (hnet.report.stats).

The fixture's validation and test rankings disagree on purpose: a selection that looked at the
test set would pick another value. The metrics.json files are also read through a recorder, so
a test metric that is read at all (even if it did not decide) fails the test."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import ClassVar

import pytest

from hnet.errors import HnetError
from hnet.metrics import METRICS, VALIDATION_METRICS
from hnet.report.stats import holm
from hnet.study import select as sel

TEST_KEYS = {m.name for m in METRICS} | {"acc_matrix", "acc_init", "task_inference_matrix"}

# beta → (validation scores per seed, test scores per seed): validation prefers 0.01, test 0.1
SCORES = {
    0.001: ([70.0, 72.0], [90.0, 91.0]),
    0.01: ([80.0, 82.0], [60.0, 61.0]),
    0.1: ([75.0, 77.0], [99.0, 99.5]),
}


def write_tuning(root, scores=SCORES, key="hnet.beta", group=("b", "cl1", "hnet", "official")):
    """Tuning cells as grid.tuning_record lists them, with metrics.json files under root."""
    cells = []
    for index, (value, (val, test)) in enumerate(scores.items()):
        for seed, v, t in zip((100, 101), val, test, strict=True):
            run_dir = f"tuning/runs/{'/'.join(group)}/beta={value}/seed{seed}"
            section, sub = key.split(".")
            metrics = {
                "config": {section: {sub: value}},
                "val_acc_final": v,
                "val_acc_during": v + 1,
                "acc_final": t,  # the test metrics, which must never be read
                "acc_during": t,
                "bwt": -t,
                "acc_matrix": [[t]],
            }
            (root / run_dir).mkdir(parents=True)
            (root / run_dir / "metrics.json").write_text(json.dumps(metrics))
            cells.append(
                dict(zip(("benchmark", "scenario", "method", "size"), group, strict=True))
                | {
                    "seed": seed,
                    "point": {key: value},
                    "point_dir": f"beta={value}",
                    "point_index": index,
                    "run_dir": run_dir,
                }
            )
    return cells


class Recorder(Mapping):
    """A metrics.json that remembers every key read from it."""

    read: ClassVar[set[str]] = set()

    def __init__(self, data):
        self.data = data

    def __getitem__(self, key):
        Recorder.read.add(key)
        return self.data[key]

    def __iter__(self):
        raise AssertionError("selection iterated over a metrics.json (it would see every key)")

    def __len__(self):
        return len(self.data)


def test_selection_never_reads_test_metrics(tmp_path, monkeypatch):
    cells = write_tuning(tmp_path)
    Recorder.read = set()
    monkeypatch.setattr(sel, "_load", lambda path: Recorder(json.loads(path.read_text())))
    result = sel.select(cells, tmp_path, "val_acc_final")
    (g,) = result["groups"]
    assert g["selected"] == {"hnet.beta": 0.01}  # best validation; the test set prefers 0.1
    assert Recorder.read == {"config", "val_acc_final"}
    assert not Recorder.read & TEST_KEYS
    assert [c["value"] for c in g["candidates"]] == [71.0, 81.0, 76.0]
    assert "test metrics are never read" in result["rule"]["text"]


def test_selection_refuses_test_metrics_as_the_rule():
    with pytest.raises(HnetError, match="not a validation metric"):
        sel.rule("acc_final", "mean", [0])
    assert {m.name for m in VALIDATION_METRICS} == {
        "val_acc_final",
        "val_acc_during",
        "val_bwt",
        "val_fwt",
        "val_forgetting",
    }


def test_ties_go_to_the_first_listed_value(tmp_path):
    tie = {0.1: ([80.0, 80.0], [1.0, 1.0]), 0.01: ([79.0, 81.0], [2.0, 2.0])}  # both mean 80
    (g,) = sel.select(write_tuning(tmp_path, tie), tmp_path, "val_acc_final")["groups"]
    assert g["selected"] == {"hnet.beta": 0.1}


def test_median_and_lower_is_better(tmp_path):
    cells = write_tuning(tmp_path)
    (g,) = sel.select(cells, tmp_path, "val_acc_final", "median")["groups"]
    assert g["selected"] == {"hnet.beta": 0.01}
    for c in cells:  # val_forgetting = the validation score: lower is better picks 0.001
        f = tmp_path / c["run_dir"] / "metrics.json"
        m = json.loads(f.read_text())
        f.write_text(json.dumps(m | {"val_forgetting": m["val_acc_final"]}))
    result = sel.select(cells, tmp_path, "val_forgetting")
    assert result["rule"]["direction"] == -1 and "lower is better" in result["rule"]["text"]
    assert result["groups"][0]["selected"] == {"hnet.beta": 0.001}


def test_every_tuning_cell_is_needed_and_must_match_its_point(tmp_path):
    cells = write_tuning(tmp_path)
    (tmp_path / cells[3]["run_dir"] / "metrics.json").unlink()
    with pytest.raises(HnetError, match=r"1 of 6 have no metrics.json"):
        sel.select(cells, tmp_path, "val_acc_final")
    cells = write_tuning(tmp_path / "2")
    f = tmp_path / "2" / cells[0]["run_dir"] / "metrics.json"
    f.write_text(json.dumps(json.loads(f.read_text()) | {"config": {"hnet": {"beta": 5.0}}}))
    with pytest.raises(HnetError, match=r"hnet\.beta = 5\.0"):
        sel.select(cells, tmp_path / "2", "val_acc_final")

    f.write_text('{"config": {"hnet": {"be')  # truncated
    with pytest.raises(HnetError, match=r"metrics\.json is damaged.*Rerun the study: it moves"):
        sel.select(cells, tmp_path / "2", "val_acc_final")


def test_undefined_scores_are_skipped_and_recorded_as_null(tmp_path):
    cells = write_tuning(tmp_path)
    f = tmp_path / cells[2]["run_dir"] / "metrics.json"  # beta=0.01, first seed
    f.write_text(json.dumps(json.loads(f.read_text()) | {"val_acc_final": None}))
    (g,) = sel.select(cells, tmp_path, "val_acc_final")["groups"]
    assert g["candidates"][1]["scores"] == [None, 82.0]
    assert g["candidates"][1]["value"] == 82.0
    json.dumps(g, allow_nan=False)  # the selection file is strict JSON


def test_selected_for():
    selection = {
        "groups": [
            {"benchmark": "b", "scenario": "cl1", "method": "ewc", "size": "none", "selected": {}},
            {
                "benchmark": "b",
                "scenario": "cl1",
                "method": "hnet",
                "size": "official",
                "selected": {"hnet.beta": 0.1},
            },
        ]
    }
    assert sel.selected_for(selection, ("b", "cl1", "hnet", "official")) == {"hnet.beta": 0.1}
    assert sel.selected_for(selection, ("b", "cl3", "hnet", "official")) is None


def test_holm_against_a_hand_computed_example():
    # m = 4 finite p-values. Sorted: 0.005·4 = 0.02; 0.01·3 = 0.03; 0.03·2 = 0.06;
    # 0.04·1 = 0.04 → raised to the running maximum 0.06. NaN is no comparison.
    p = [0.01, 0.04, math.nan, 0.03, 0.005]
    adjusted = holm(p)
    assert adjusted[:2] == pytest.approx([0.03, 0.06])
    assert math.isnan(adjusted[2])
    assert adjusted[3:] == pytest.approx([0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == []
    assert holm([0.02]) == pytest.approx([0.02])  # one comparison: unchanged
