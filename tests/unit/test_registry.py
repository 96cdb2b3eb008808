"""Every (method, scenario, benchmark) triple declared supported runs end to end (2 tasks).

Parametrized over the registries, so a new method or benchmark is covered by adding it. This
tier runs the representative triples of tests/registry_cases.py (every code path a triple can
take); tests/integration/test_registry_matrix.py runs all the others. Files are tiny copies in
the real formats. Image benchmarks run here with a small MLP (the target is a config key like
any other); the convolutional targets run every method in
``test_every_method_runs_with_each_conv_target`` below, which keeps the tier fast. Jobs use one
torch thread: on a shared machine, tiny multi-threaded kernels spend most of their time waiting.
"""

import numpy as np
import pytest
from registry_cases import TRIPLES, check_triple, tiny_overrides, unit_triples

from hnet import config
from hnet.cli import main
from hnet.data import BENCHMARKS
from hnet.job.run import run_job
from hnet.methods import METHODS


@pytest.mark.parametrize(("method", "scenario", "benchmark"), unit_triples())
def test_every_supported_triple_runs(tmp_path, tiny_data_root, method, scenario, benchmark):
    check_triple(tmp_path, tiny_data_root, method, scenario, benchmark)


def test_the_tiers_run_every_triple_once():
    """This tier's triples and the integration tier's are all the supported ones, disjoint."""
    from registry_cases import other_triples

    unit, other = unit_triples(), other_triples()
    assert sorted(unit + other) == sorted(TRIPLES) and not set(unit) & set(other)
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
