"""The torch-free catalog used by the Snakefile must match the live registries."""

from __future__ import annotations

from hnet.models import sizes
from hnet.study import catalog


def test_catalog_snapshot_is_current():
    assert catalog.load() == catalog.build(), (
        "hnet/study/catalog.json is stale: a benchmark, method or size preset changed. "
        "Regenerate it with `python -m hnet.study.catalog` and commit the result."
    )


def test_catalog_size_syntax_matches_sizes_module():
    for name in ["official", "sm", "pm10", "cr0.5", "cr1", "cr10.25", "cr", "cr.5", "crx", "xl"]:
        assert catalog.is_valid_size(name) == sizes.is_valid_size(name), name
