"""How the report's tables write numbers: a mean that is zero up to float rounding (a transfer
of +0.05 and −0.05 over two tasks) reads 0.00, never -0.00, and real signs stay."""

from __future__ import annotations

import pytest

from hnet.report.tables import fixed


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
