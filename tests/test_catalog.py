"""The torch-free catalog used by the Snakefile must match the live registries."""

from __future__ import annotations

import subprocess
import sys

from hnet import catalog
from hnet.models import sizes


def test_catalog_snapshot_is_current():
    assert catalog.load() == catalog.build(), (
        "hnet/catalog.json is stale: a benchmark, method or size preset changed. "
        "Regenerate it with `python -m hnet.catalog` and commit the result."
    )


def test_catalog_size_syntax_matches_sizes_module():
    for name in ["official", "sm", "pm10", "cr0.5", "cr1", "cr10.25", "cr", "cr.5", "crx", "xl"]:
        assert catalog.is_valid_size(name) == sizes.is_valid_size(name), name


def test_catalog_load_imports_no_torch():
    code = "import sys, hnet.catalog as c; c.load(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
