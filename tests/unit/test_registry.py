"""Every (method, scenario, benchmark) triple declared supported runs end to end (2 tasks).

Parametrized over the registries, so a new method or benchmark is covered by adding it. Files
are tiny copies in the real formats. Image benchmarks run here with a small MLP (the target is
a config key like any other); the convolutional targets run every method in
``test_every_method_runs_with_each_conv_target`` below, which keeps the tier fast. Jobs use one
torch thread: on a shared machine, tiny multi-threaded kernels spend most of their time waiting.
"""

import json

import numpy as np
import pytest

from hnet import config
from hnet.cli import main
from hnet.data import BENCHMARKS
from hnet.job.run import run_job
from hnet.methods import METHODS

# Shrink every benchmark to two tasks (toy regression has three fixed ones).
TWO_TASKS = {"classes_per_task": 5, "n_tasks": 2}
# Shrink the networks a method has besides its target (replay models, generators, task
# inference): whichever of these keys its config section has.
TINY = {
    "enc_hidden": [8],
    "dec_hidden": [8],
    "gen_hidden": [8],
    "tir_hidden": [8],
    "latent": 4,
    "dec_size": "digits_dec",
}
TRIPLES = [
    (m, sc, b)
    for m, mcls in METHODS.items()
    for b, spec in BENCHMARKS.items()
    for sc in spec.scenarios
    if sc in mcls.scenarios and (mcls.benchmarks is None or b in mcls.benchmarks)
]


def tiny_overrides(benchmark: str, root) -> dict:
    """Two tasks, three steps of 8, tiny files (sample counts unchecked), a small MLP."""
    data = BENCHMARKS.get(benchmark).defaults["data"]
    over = {f"data.{k}": v for k, v in TWO_TASKS.items() if k in data}
    if "check_counts" in data:
        over["data.check_counts"] = False
    return over | {
        "data.dir": str(root),
        "data.download": False,
        "train.iters": 3,
        "train.epochs": 0,
        "train.batch_size": 8,
        "target.kind": "mlp",
        "target.hidden": [16],
        "train.log_every": 1,
    }


@pytest.mark.parametrize(("method", "scenario", "benchmark"), TRIPLES)
def test_every_supported_triple_runs(tmp_path, tiny_data_root, method, scenario, benchmark):
    over = tiny_overrides(benchmark, tiny_data_root)
    defaults = METHODS.get(method).defaults
    over |= {f"{method}.{k}": v for k, v in TINY.items() if k in defaults}
    cfg = config.resolve(benchmark, method, scenario=scenario, overrides=over, threads=1)
    res = run_job(cfg, tmp_path / "run", progress=False)
    R = np.array(res["acc_matrix"], dtype=float)
    n = 3 if benchmark == "toy_regression" else 2
    assert R.shape == (n, n) and np.isfinite(R).all()
    assert len(res["acc_init"]) == n
    assert res["n_params_target"] > 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["method"] == method


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


CONV = {
    "resnet32": "split_cifar10_100",  # the ResNet-32 protocol (augmentation, BatchNorm, schedule)
    "zenke": "split_cifar10_100_zenke",  # the ZenkeNet protocol (dropout, Adam β1 = 0.5)
}


def image_methods() -> list[str]:
    """Methods that run on Split CIFAR (the replay family declares the MNIST family only)."""
    return [
        m for m, c in METHODS.items() if c.benchmarks is None or CONV["resnet32"] in c.benchmarks
    ]


@pytest.mark.parametrize("kind", list(CONV))
@pytest.mark.parametrize("method", image_methods())
def test_every_method_runs_with_each_conv_target(tmp_path, tiny_data_root, method, kind):
    """Every method on Split CIFAR-10/100 with its protocol's own conv target, two tasks of two
    steps (the cheapest settings that still reach every code path: estimates from 4 samples)."""
    benchmark = CONV[kind]
    over = tiny_overrides(benchmark, tiny_data_root)
    del over["target.kind"], over["target.hidden"]
    over |= {"train.iters": 2, "train.batch_size": 4, "train.epochs": 0}
    over |= {f"{m}.{k}": 4 for m, k in (("ewc", "fisher_samples"), ("online_ewc", "fisher_samples"),
                                         ("mas", "samples"), ("replay", "buffer_per_task"))
             if m == method}  # fmt: skip
    cfg = config.resolve(benchmark, method, overrides=over, threads=1)
    assert cfg["target"]["kind"] == kind
    res = run_job(cfg, tmp_path / "run", progress=False)
    R = np.array(res["acc_matrix"], dtype=float)
    assert R.shape == (2, 2) and np.isfinite(R).all()
    assert res["n_params_target"] == {"resnet32": 468_540, "zenke": 1_276_508}[kind] - 4 * (
        10 * (64 if kind == "resnet32" else 512) + 10
    )  # 2 of the 6 heads


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
