"""Every (method, scenario, benchmark) triple declared supported runs end to end (2 tasks).

Parametrized over the registries, so a new method or benchmark is covered by adding it. This
tier runs the representative triples of tests/registry_cases.py (every code path a triple can
take); tests/integration/test_registry_matrix.py runs all the others. Files are tiny copies in
the real formats. Image benchmarks run here with a small MLP (the target is a config key like
any other); the convolutional targets run in ``test_every_method_runs_with_each_conv_target``
below (every method with ResNet-32 here, the rest in the integration tier). Jobs use one
torch thread: on a shared machine, tiny multi-threaded kernels spend most of their time waiting.
"""

import pytest
from registry_cases import (
    TRIPLES,
    check_conv_target,
    check_triple,
    unit_conv_cases,
    unit_triples,
)

from hnet import config
from hnet.cli import main
from hnet.data import BENCHMARKS
from hnet.methods import METHODS


@pytest.mark.parametrize(("method", "scenario", "benchmark"), unit_triples())
def test_every_supported_triple_runs(tmp_path, tiny_data_root, method, scenario, benchmark):
    check_triple(tmp_path, tiny_data_root, method, scenario, benchmark)


def test_the_tiers_run_every_triple_once():
    """This tier's triples and the integration tier's are all the supported ones, disjoint;
    the same for the (method, conv target) pairs."""
    from registry_cases import CONV, image_methods, other_conv_cases, other_triples

    unit, other = unit_triples(), other_triples()
    assert sorted(unit + other) == sorted(TRIPLES) and not set(unit) & set(other)
    conv, other_conv = unit_conv_cases(), other_conv_cases()
    assert sorted(conv + other_conv) == sorted((m, k) for m in image_methods() for k in CONV)
    assert not set(conv) & set(other_conv) and {k for _, k in conv} == set(CONV)
    assert {(m, sc) for m, sc, _ in unit} == {(m, sc) for m, sc, _ in TRIPLES}
    assert {(b, sc) for _, sc, b in unit} == {(b, sc) for _, sc, b in TRIPLES}


def test_unsupported_pairs_fail_at_config_time():
    for m, mcls in METHODS.items():
        for b, spec in BENCHMARKS.items():
            for sc in ("cl1", "cl2", "cl3"):
                if sc in mcls.scenarios and sc in spec.scenarios:
                    continue
                with pytest.raises(config.ConfigError, match="does not support scenario"):
                    config.resolve(b, m, scenario=sc)


def test_methods_declaring_benchmarks_refuse_the_others():
    restricted = [(m, c) for m, c in METHODS.items() if c.benchmarks is not None]
    assert {"hnet_r", "hnet_tir", "dgr_distill"} <= {m for m, _ in restricted}
    for m, mcls in restricted:
        assert set(mcls.benchmarks) <= set(BENCHMARKS.names()), m
        for b, spec in BENCHMARKS.items():
            sc = next((s for s in spec.scenarios if s in mcls.scenarios), None)
            if sc is None:  # no common scenario: refused for that reason already
                continue
            if b in mcls.benchmarks:
                config.resolve(b, m, scenario=sc)
            else:
                with pytest.raises(config.ConfigError, match="does not support benchmark"):
                    config.resolve(b, m, scenario=sc)


def test_hnet_list_shows_every_method_with_scenarios(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name, mcls in METHODS.items():
        line = next(ln for ln in out.splitlines() if ln.split()[:1] == [name])
        assert "/".join(mcls.scenarios) in line
        if mcls.benchmarks is not None:  # the next line names the benchmarks it runs on
            lines = out.splitlines()
            assert "only on: " + ", ".join(mcls.benchmarks) in lines[lines.index(line) + 1]
    for name in BENCHMARKS.names():
        assert name in out


@pytest.mark.parametrize(("method", "kind"), unit_conv_cases())
def test_every_method_runs_with_each_conv_target(tmp_path, tiny_data_root, method, kind):
    """Every method on Split CIFAR-10/100 with ResNet-32, and ZenkeNet with HNET and EWC (the
    other methods with ZenkeNet: tests/integration/test_registry_matrix.py)."""
    check_conv_target(tmp_path, tiny_data_root, method, kind)


def test_methods_package_holds_one_module_per_method_and_names_come_from_the_decorator():
    """``hnet/methods/*.py`` are methods only (each registers at least one; the shared parts
    live in ``hnet.methods.common``), and a method's name is written once, in its
    ``@METHODS.register`` decorator: no class there assigns ``name`` itself."""
    import ast
    import importlib
    from pathlib import Path

    import hnet.methods as package

    registered = {cls.__module__ for _, cls in METHODS.items()}
    for path in sorted(Path(package.__file__).parent.glob("*.py")):
        if path.name == "__init__.py":
            continue
        module = f"hnet.methods.{path.stem}"
        importlib.import_module(module)
        assert module in registered, f"{module} registers no method: move it to methods/common"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                assigned = {
                    t.id
                    for stmt in node.body
                    if isinstance(stmt, ast.Assign | ast.AnnAssign)
                    for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])
                    if isinstance(t, ast.Name)
                }
                assert "name" not in assigned, f"{module}.{node.name} sets name itself"
    for name, cls in METHODS.items():
        assert cls.name == name


def test_every_method_has_its_own_colour_and_a_marker_in_the_report():
    """Figures put many methods on one plot (accuracy vs memory): each registered method has a
    fixed colour no other method uses (hnet: the size blues) and a marker, so a new method that
    forgets its entry in hnet/report/style.py fails here instead of sharing a colour."""
    from hnet.report.style import METHOD_COLORS, METHOD_MARKERS

    methods = [m for m in METHODS.names() if m != "hnet"]
    assert sorted(m for m in methods if m not in METHOD_COLORS) == []
    assert sorted(m for m in METHODS.names() if m not in METHOD_MARKERS) == []
    colours = [METHOD_COLORS[m].lower() for m in methods]
    assert len(set(colours)) == len(colours)
