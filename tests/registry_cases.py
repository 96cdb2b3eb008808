"""Every (method, scenario, benchmark) triple declared supported, run end to end (2 tasks), and
how the triples are split between the tiers.

The unit tier (tests/unit/test_registry.py) runs a representative subset that reaches every
code path a triple can take (:func:`unit_triples`); the integration tier
(tests/integration/test_registry_matrix.py) runs all the others, so together the tiers still run
every triple, each exactly once. Both check a triple with :func:`check_triple`. Files are tiny
copies in the real formats; image benchmarks run with a small MLP (the target is a config key
like any other). Jobs use one torch thread: on a shared machine, tiny multi-threaded kernels
spend most of their time waiting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hnet import config
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
TINY_BUFFER = 6  # buffer.size of rehearsal methods on the tiny files
ICARL_TINY_BUFFER = 40  # ≥ the classes of two tasks of every benchmark (split_cifar10_100: 20)
TRIPLES = [
    (m, sc, b)
    for m, mcls in METHODS.items()
    for b, spec in BENCHMARKS.items()
    for sc in spec.scenarios
    if sc in mcls.scenarios and (mcls.benchmarks is None or b in mcls.benchmarks)
]

# One benchmark for each way of loading and shaping data: sklearn digits split into tasks and
# permuted (8x8), idx files split and permuted (28x28 padded to 32), CIFAR pickles (3 channels,
# augmentation, normalization), the regression toy. The other benchmarks are the same loaders on
# other files or with other task counts.
ALL_SCENARIOS = "split_digits"  # every method in every scenario it supports
EVERY_METHOD = ("permuted_digits", "split_mnist", "permuted_mnist", "split_cifar10_100",
                "toy_regression")  # fmt: skip
ONE_METHOD = "hnet"  # every benchmark in every scenario, with HNET


def unit_triples() -> list[tuple[str, str, str]]:
    """The unit tier's triples, in :data:`TRIPLES` order: every (method, scenario) on
    split_digits; every method on each benchmark of :data:`EVERY_METHOD` in the last scenario
    it supports there; HNET on every benchmark in each of its scenarios. So every method meets
    every scenario and every kind of data, and every benchmark every scenario."""
    last = {}
    for m, sc, b in TRIPLES:
        last[m, b] = sc  # TRIPLES lists a pair's scenarios in order: the last one wins
    out = []
    for m, sc, b in TRIPLES:
        if b == ALL_SCENARIOS or (b in EVERY_METHOD and sc == last[m, b]) or m == ONE_METHOD:
            out.append((m, sc, b))
    return out


def other_triples() -> list[tuple[str, str, str]]:
    """The triples the unit tier leaves out: the integration tier runs them."""
    unit = set(unit_triples())
    return [t for t in TRIPLES if t not in unit]


def tiny_buffer(method: str) -> dict:
    """A buffer the tiny files can fill (2 or 3 samples per task), for rehearsal methods; iCaRL
    needs at least one exemplar per class seen (its herding keeps what a class has)."""
    if not METHODS.get(method).rehearsal:
        return {}
    return {"buffer.size": ICARL_TINY_BUFFER if method == "icarl" else TINY_BUFFER}


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


def check_triple(tmp_path: Path, root, method: str, scenario: str, benchmark: str) -> None:
    """Run the triple's job on the tiny files in ``root``; its results and metrics.json."""
    over = tiny_overrides(benchmark, root)
    defaults = METHODS.get(method).defaults
    over |= {f"{method}.{k}": v for k, v in TINY.items() if k in defaults}
    over |= tiny_buffer(method)
    cfg = config.resolve(benchmark, method, scenario=scenario, overrides=over, threads=1)
    res = run_job(cfg, tmp_path / "run", progress=False)
    R = np.array(res["acc_matrix"], dtype=float)
    n = 3 if benchmark == "toy_regression" else 2
    assert R.shape == (n, n) and np.isfinite(R).all()
    assert len(res["acc_init"]) == n
    assert res["n_params_target"] > 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["method"] == method


CONV = {
    "resnet32": "split_cifar10_100",  # the ResNet-32 protocol (augmentation, BatchNorm, schedule)
    "zenke": "split_cifar10_100_zenke",  # the ZenkeNet protocol (dropout, Adam β1 = 0.5)
}
# ZenkeNet in the unit tier: HNET (its weights generated) and EWC (an estimate in eval mode,
# dropout off); ResNet-32 with BatchNorm, the target with the most method-specific paths (per-task
# statistics, train/eval modes), runs every method there.
ZENKE_UNIT = ("hnet", "ewc")


def image_methods() -> list[str]:
    """Methods that run on Split CIFAR (the replay family declares the MNIST family only)."""
    return [
        m for m, c in METHODS.items() if c.benchmarks is None or CONV["resnet32"] in c.benchmarks
    ]


def unit_conv_cases() -> list[tuple[str, str]]:
    """(method, conv target) pairs of the unit tier."""
    return [(m, k) for k in CONV for m in image_methods() if k == "resnet32" or m in ZENKE_UNIT]


def other_conv_cases() -> list[tuple[str, str]]:
    """(method, conv target) pairs the unit tier leaves out: the integration tier runs them."""
    unit = set(unit_conv_cases())
    return [(m, k) for k in CONV for m in image_methods() if (m, k) not in unit]


def check_conv_target(tmp_path: Path, root, method: str, kind: str) -> None:
    """``method`` on Split CIFAR-10/100 with its protocol's own conv target ``kind``, two tasks of
    two steps (the cheapest settings that still reach every code path: estimates from 4
    samples)."""
    benchmark = CONV[kind]
    over = tiny_overrides(benchmark, root)
    del over["target.kind"], over["target.hidden"]
    over |= {"train.iters": 2, "train.batch_size": 4, "train.epochs": 0}
    over |= {f"{m}.{k}": 4 for m, k in (("ewc", "fisher_samples"), ("online_ewc", "fisher_samples"),
                                         ("mas", "samples"))
             if m == method}  # fmt: skip
    over |= tiny_buffer(method)
    scenarios = METHODS.get(method).scenarios  # the default (cl1) where the method has it
    scenario = "cl1" if "cl1" in scenarios else scenarios[0]
    cfg = config.resolve(benchmark, method, scenario=scenario, overrides=over, threads=1)
    assert cfg["target"]["kind"] == kind
    res = run_job(cfg, tmp_path / "run", progress=False)
    R = np.array(res["acc_matrix"], dtype=float)
    assert R.shape == (2, 2) and np.isfinite(R).all()
    assert res["n_params_target"] == {"resnet32": 468_540, "zenke": 1_276_508}[kind] - 4 * (
        10 * (64 if kind == "resnet32" else 512) + 10
    )  # 2 of the 6 heads
