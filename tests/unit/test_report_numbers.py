"""How the report's tables write numbers (hnet.report.numbers): a mean that is zero up to float
rounding (a transfer of +0.05 and −0.05 over two tasks) reads 0.00, never -0.00; real signs
stay."""

from __future__ import annotations

import pytest

from hnet.report.numbers import fixed, or_dash, signed


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [
        (-2.842170943040401e-15, 2, "0.00"),
        (-0.004, 2, "0.00"),
        (-0.006, 2, "-0.01"),
        (0.65, 2, "0.65"),
        (-0.76, 2, "-0.76"),
        (-1e-9, 3, "0.000"),
        (1.3231, 3, "1.323"),
    ],
)
def test_fixed_writes_zero_without_a_sign(value, digits, text):
    assert fixed(value, digits) == text


@pytest.mark.parametrize(
    ("value", "text"), [(-1e-12, "+0.00"), (0.004, "+0.00"), (-0.69, "-0.69"), (4.25, "+4.25")]
)
def test_signed_differences_keep_their_sign_but_zero_has_plus(value, text):
    assert signed(value) == text


def test_missing_numbers_are_a_dash():
    assert or_dash(float("nan")) == or_dash(None) == or_dash(float("inf"), sign=True) == "–"
    assert or_dash(-1e-15, 3) == "0.000" and or_dash(-0.004, sign=True) == "+0.00"
