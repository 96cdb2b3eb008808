"""Cheap imports: modules that study parsing, job start-up or `hnet --help` load must not pull
in torch, mlflow or the plotting stack (each checked in a fresh interpreter)."""

import os
import subprocess
import sys
from pathlib import Path

from hnet import metrics


def test_metrics_module_does_not_import_torch():
    code = "import sys, hnet.metrics; print('torch' in sys.modules)"
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root, env=env
    )
    assert result.stdout.strip() == "False"
    assert metrics.__all__  # the public API is declared


def test_import_is_lazy():
    code = "import sys, hnet.data; print('torchvision' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_catalog_load_imports_no_torch():
    code = "import sys, hnet.study.catalog as c; c.load(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_layout_module_imports_nothing_heavy():
    code = (
        "import sys, hnet.report.layout; "
        "print(sorted({'numpy', 'pandas', 'matplotlib', 'torch', 'scipy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_importing_the_module_does_not_import_mlflow():
    code = "import sys, hnet.tracking.mirror, hnet.tracking.sync, hnet.tracking.status; "
    code += "sys.exit('mlflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_hnet_status_imports_neither_torch_nor_snakemake(tmp_path):
    """`hnet status` runs beside a study, on login nodes, every few seconds with --watch: it
    reads files and loads none of the heavy stacks (nor Snakemake, whose lock it never takes)."""
    from synthetic_runs import write_status_study

    write_status_study(tmp_path / "s", 40)
    code = (
        "import sys, io, contextlib; from hnet.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['status', {str(tmp_path / 's')!r}, '--jobs', '2']) == 0\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'torch', 'snakemake', 'mlflow', 'pandas', 'numpy', 'matplotlib'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
