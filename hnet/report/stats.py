"""Multiple-comparison adjustment of the paired table's p-values.

Why: each benchmark × scenario table tests every method against the hnet reference, so with
m comparisons the chance of at least one p < 0.05 under no real difference is far above 5 %.
Holm's step-down method (Holm 1979) controls that family-wise error rate at the nominal level
for any dependence between the tests and is uniformly more powerful than Bonferroni. SciPy has
no Holm (``scipy.stats.false_discovery_control`` controls the false discovery rate instead)
and statsmodels is not a dependency, so here are its ten lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order. NaN entries (undefined tests) are not
    comparisons: they do not count in m and stay NaN.

    Sorted ascending, the k-th smallest of m p-values (k = 0..m−1) becomes
    max over j ≤ k of min(1, (m − j) · p_(j)): the running maximum keeps the order.
    """
    finite = [i for i, p in enumerate(pvalues) if math.isfinite(p)]
    m = len(finite)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(finite, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out
