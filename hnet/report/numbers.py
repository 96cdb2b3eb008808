"""How the report's tables write a number: a fixed number of decimals, "–" where there is none,
and never "-0.00" (a mean of ±1e-15, or a difference that rounds to zero, is zero, not a loss).
One home, so the summary, the paired comparison and the published column agree."""

from __future__ import annotations

import math


def fixed(v: float, digits: int = 2) -> str:
    """``v`` to ``digits`` decimals, zero without a sign."""
    return f"{round(v, digits) + 0.0:.{digits}f}"


def signed(v: float, digits: int = 2) -> str:
    """A difference: its sign always written, "+0.00" for one that rounds to zero."""
    return f"{round(v, digits) + 0.0:+.{digits}f}"


def or_dash(v: float, digits: int = 2, sign: bool = False) -> str:
    """:func:`fixed` (or :func:`signed`), "–" for a missing or non-finite number."""
    if v is None or not math.isfinite(v):
        return "–"
    return signed(v, digits) if sign else fixed(v, digits)
