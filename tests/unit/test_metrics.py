"""Tests for hnet.metrics: hand-computed values, invariants, T == 1 and input validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hnet.metrics import (
    acc_during,
    acc_final,
    all_metrics,
    bwt,
    forgetting,
    fwt,
    transfer_vs_scratch,
)

# Hand-computed example, T = 3 (code indices 0-based; R[i, j] = task j after training task i).
# Deliberately not symmetric and with R[1, 0] > R[0, 0], so transposing R, comparing against the
# first row instead of the diagonal, or using first-minus-last "forgetting" all give other numbers.
#
#            task0  task1  task2
#   after 0   0.90   0.20   0.10
#   after 1   0.95   0.95   0.30
#   after 2   0.70   0.85   0.90
R3 = [
    [0.90, 0.20, 0.10],
    [0.95, 0.95, 0.30],
    [0.70, 0.85, 0.90],
]
B3 = [0.10, 0.15, 0.20]
SCRATCH3 = [0.80, 0.90, 1.00]

# acc_final  = (0.70 + 0.85 + 0.90) / 3                       = 2.45 / 3 = 0.81666…
# acc_during = (0.90 + 0.95 + 0.90) / 3                       = 2.75 / 3 = 0.91666…
# bwt        = ((0.70 − 0.90) + (0.85 − 0.95)) / 2            = (−0.20 − 0.10) / 2 = −0.15
#              (whole-lower-triangle variant would be (0.05 − 0.20 − 0.10) / 3 = −0.0833…)
# fwt        = ((R[0,1] − b[1]) + (R[1,2] − b[2])) / 2
#            = ((0.20 − 0.15) + (0.30 − 0.20)) / 2            = (0.05 + 0.10) / 2 = 0.075
# forgetting = task0: max(R[0,0], R[1,0]) − R[2,0] = 0.95 − 0.70 = 0.25
#              task1: max(R[1,1])          − R[2,1] = 0.95 − 0.85 = 0.10
#              mean = 0.175   (≠ −bwt = 0.15 because the max is at l = 1, not l = j = 0)
# transfer_vs_scratch = ((0.90 − 0.80) + (0.95 − 0.90) + (0.90 − 1.00)) / 3
#                     = (0.10 + 0.05 − 0.10) / 3 = 0.05 / 3 = 0.01666…
EXPECTED3 = {
    "acc_final": 2.45 / 3,
    "acc_during": 2.75 / 3,
    "bwt": -0.15,
    "fwt": 0.075,
    "forgetting": 0.175,
    "transfer_vs_scratch": 0.05 / 3,
}


def test_acc_final_hand_computed():
    assert acc_final(R3) == pytest.approx(EXPECTED3["acc_final"])


def test_acc_during_hand_computed():
    assert acc_during(R3) == pytest.approx(EXPECTED3["acc_during"])


def test_bwt_hand_computed():
    assert bwt(R3) == pytest.approx(EXPECTED3["bwt"])


def test_fwt_hand_computed():
    assert fwt(R3, B3) == pytest.approx(EXPECTED3["fwt"])


def test_forgetting_hand_computed():
    assert forgetting(R3) == pytest.approx(EXPECTED3["forgetting"])


def test_transfer_vs_scratch_hand_computed_vector():
    assert transfer_vs_scratch(R3, SCRATCH3) == pytest.approx(EXPECTED3["transfer_vs_scratch"])


def test_transfer_vs_scratch_accepts_scratch_matrix_and_uses_its_diagonal():
    # Off-diagonal entries are junk: only the diagonal (0.80, 0.90, 1.00) may matter.
    scratch_matrix = [
        [0.80, 0.00, 0.33],
        [0.11, 0.90, 0.77],
        [0.50, 0.42, 1.00],
    ]
    assert transfer_vs_scratch(R3, scratch_matrix) == pytest.approx(
        EXPECTED3["transfer_vs_scratch"]
    )


def test_fwt_hand_computed_4x4():
    # T = 4, only the superdiagonal R[j−1, j] and b[1:] matter:
    #   (R[0,1] − b[1]) + (R[1,2] − b[2]) + (R[2,3] − b[3])
    # = (0.30 − 0.10) + (0.50 − 0.20) + (0.10 − 0.40) = 0.20 + 0.30 − 0.30 = 0.20 → mean 0.20 / 3
    R = np.full((4, 4), 0.99)
    R[0, 1], R[1, 2], R[2, 3] = 0.30, 0.50, 0.10
    b = [0.77, 0.10, 0.20, 0.40]  # b[0] must be ignored
    assert fwt(R, b) == pytest.approx(0.20 / 3)


def test_forgetting_can_be_negative_and_max_excludes_last_row():
    # Task 0's column rises: 0.5 → 0.6 → 0.9. Max over l ∈ {0, 1} is 0.6, so
    # task0 contributes 0.6 − 0.9 = −0.3 (including the last row in the max would give 0).
    # Task 1: max(R[1,1]) − R[2,1] = 0.8 − 0.8 = 0.  Mean = −0.15.
    R = [
        [0.5, 0.1, 0.1],
        [0.6, 0.8, 0.1],
        [0.9, 0.8, 0.7],
    ]
    assert forgetting(R) == pytest.approx(-0.15)


def test_all_metrics_hand_computed_and_json_serialisable():
    out = all_metrics(R3, B3, SCRATCH3)
    assert set(out) == set(EXPECTED3)
    for key, value in EXPECTED3.items():
        assert out[key] == pytest.approx(value), key
        assert type(out[key]) is float, key  # plain Python float, not np.float64
    assert json.loads(json.dumps(out)) == out


def test_all_metrics_without_scratch_has_no_transfer_key():
    out = all_metrics(np.asarray(R3), np.asarray(B3))
    assert "transfer_vs_scratch" not in out
    assert set(out) == {"acc_final", "acc_during", "bwt", "fwt", "forgetting"}


@pytest.mark.parametrize(
    "fn",
    [acc_final, acc_during, bwt, forgetting, lambda R: fwt(R, B3)],
    ids=["acc_final", "acc_during", "bwt", "forgetting", "fwt"],
)
def test_return_plain_python_float_for_numpy_input(fn):
    assert type(fn(np.asarray(R3, dtype=np.float32))) is float


def test_columns_that_never_drop_give_zero_bwt_and_zero_forgetting():
    # Each column stays at its diagonal value once the task is learned (upper triangle arbitrary).
    R = np.array(
        [
            [0.7, 0.1, 0.2, 0.3],
            [0.7, 0.8, 0.4, 0.1],
            [0.7, 0.8, 0.6, 0.5],
            [0.7, 0.8, 0.6, 0.9],
        ]
    )
    assert bwt(R) == 0.0
    assert forgetting(R) == 0.0


def test_non_decreasing_columns_give_nonnegative_bwt_and_nonpositive_forgetting():
    # Columns only improve after their task: task0 0.5→0.6→0.7, task1 0.6→0.65.
    # bwt = ((0.7 − 0.5) + (0.65 − 0.6)) / 2 = 0.125
    # forgetting = ((max(0.5, 0.6) − 0.7) + (0.6 − 0.65)) / 2 = (−0.1 − 0.05) / 2 = −0.075
    R = [
        [0.5, 0.0, 0.0],
        [0.6, 0.6, 0.0],
        [0.7, 0.65, 0.9],
    ]
    assert bwt(R) == pytest.approx(0.125)
    assert forgetting(R) == pytest.approx(-0.075)


def test_forgetting_at_least_minus_bwt_on_random_matrices():
    # max_{l∈[j, T−1]} R[l, j] ≥ R[j, j] term by term, hence forgetting ≥ −bwt.
    rng = np.random.default_rng(20200101)
    strict = 0
    for _ in range(500):
        T = int(rng.integers(2, 9))
        R = rng.uniform(0.0, 1.0, size=(T, T))
        f, b = forgetting(R), bwt(R)
        assert f >= -b - 1e-12
        strict += f > -b + 1e-9
    # The bound is not trivially an equality: most random matrices (T ≥ 3) satisfy it strictly.
    assert strict > 100


def _reference_loops(R, b, s):
    """Independent 1-based loop implementation of docs/metrics.md, for cross-checking."""
    T = len(R)

    def r(i, j):  # 1-based access
        return R[i - 1][j - 1]

    return {
        "acc_final": sum(r(T, j) for j in range(1, T + 1)) / T,
        "acc_during": sum(r(j, j) for j in range(1, T + 1)) / T,
        "bwt": sum(r(T, j) - r(j, j) for j in range(1, T)) / (T - 1),
        "fwt": sum(r(j - 1, j) - b[j - 1] for j in range(2, T + 1)) / (T - 1),
        "forgetting": sum(max(r(row, j) for row in range(j, T)) - r(T, j) for j in range(1, T))
        / (T - 1),
        "transfer_vs_scratch": sum(r(j, j) - s[j - 1] for j in range(1, T + 1)) / T,
    }


@pytest.mark.parametrize("T", [2, 3, 5, 10])
def test_all_metrics_match_reference_loops_on_random_matrices(T):
    rng = np.random.default_rng(T)
    R = rng.uniform(size=(T, T))
    b = rng.uniform(size=T)
    s = rng.uniform(size=T)
    got = all_metrics(R, b, s)
    want = _reference_loops(R.tolist(), b.tolist(), s.tolist())
    assert got == pytest.approx(want)


def test_single_task_undefined_metrics_are_none():
    R, b = [[0.8]], [0.1]
    assert bwt(R) is None
    assert fwt(R, b) is None
    assert forgetting(R) is None
    assert acc_final(R) == pytest.approx(0.8)
    assert acc_during(R) == pytest.approx(0.8)
    assert transfer_vs_scratch(R, [0.5]) == pytest.approx(0.3)
    out = all_metrics(R, b, [0.5])
    assert out["bwt"] is None and out["fwt"] is None and out["forgetting"] is None
    assert json.loads(json.dumps(out))["bwt"] is None


@pytest.mark.parametrize(
    "bad_R",
    [
        [0.1, 0.2, 0.3],  # 1-D
        [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]],  # 2×3, not square
        np.zeros((2, 2, 2)),  # 3-D
        np.zeros((0, 0)),  # empty
        [[0.1, float("nan")], [0.2, 0.3]],  # partially filled
        [[0.1, 0.2], [0.3]],  # ragged
        [["a", "b"], ["c", "d"]],  # not numeric
    ],
    ids=["1d", "non-square", "3d", "empty", "nan", "ragged", "strings"],
)
@pytest.mark.parametrize(
    "fn",
    [acc_final, acc_during, bwt, forgetting, lambda R: all_metrics(R, [0.0, 0.0])],
    ids=["acc_final", "acc_during", "bwt", "forgetting", "all_metrics"],
)
def test_bad_R_raises_value_error(fn, bad_R):
    with pytest.raises(ValueError, match="R "):
        fn(bad_R)


@pytest.mark.parametrize("bad_b", [[0.1, 0.2], [0.1, 0.2, 0.3, 0.4], [[0.1, 0.2, 0.3]], 0.1])
def test_b_of_wrong_length_raises_value_error(bad_b):
    with pytest.raises(ValueError, match="b must be a vector of length T=3"):
        fwt(R3, bad_b)
    with pytest.raises(ValueError, match="b must be a vector of length T=3"):
        all_metrics(R3, bad_b)


@pytest.mark.parametrize(
    "bad_scratch", [[0.1, 0.2], [0.1, 0.2, 0.3, 0.4], np.zeros((2, 2)), np.zeros((3, 4))]
)
def test_r_scratch_of_wrong_shape_raises_value_error(bad_scratch):
    with pytest.raises(ValueError, match="r_scratch"):
        transfer_vs_scratch(R3, bad_scratch)
    with pytest.raises(ValueError, match="r_scratch"):
        all_metrics(R3, B3, bad_scratch)


# -- where FWT's definition does not hold -------------------------------------------------------
def test_fwt_applies_in_cl2_only_with_a_reason_elsewhere():
    from hnet.metrics import FWT_NOT_APPLICABLE, not_applicable
    from hnet.scenarios import SCENARIOS

    assert set(FWT_NOT_APPLICABLE) == set(SCENARIOS) - {"cl2"}
    assert not_applicable("cl2") == {} and not_applicable("cl2", validation=True) == {}
    for sc in ("cl1", "cl3"):
        na = not_applicable(sc, validation=True)
        assert set(na) == {"fwt", "val_fwt"} and na["fwt"] == FWT_NOT_APPLICABLE[sc]
        assert sc.upper() in na["fwt"]  # the reason names its scenario
        out = all_metrics(R3, B3, scenario=sc)
        assert out["fwt"] is None  # not a number, whatever R and b say
        assert out["bwt"] == pytest.approx(EXPECTED3["bwt"])  # the others are untouched
    assert all_metrics(R3, B3, scenario="cl2")["fwt"] == pytest.approx(EXPECTED3["fwt"])
    assert all_metrics(R3, B3)["fwt"] == pytest.approx(EXPECTED3["fwt"])  # no scenario: formula


def test_transfer_controls_name_their_metrics():
    from hnet.metrics import METRICS, TRANSFER_CONTROLS

    names = {m.name: m for m in METRICS}
    assert TRANSFER_CONTROLS == {
        "scratch": "transfer_vs_scratch",
        "hnet_scratch": "transfer_vs_hnet_scratch",
    }
    for control, metric in TRANSFER_CONTROLS.items():
        assert names[metric].label == f"transfer vs {control}" and names[metric].summarized
