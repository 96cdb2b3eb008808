"""Every (method, scenario, benchmark) triple declared supported runs end to end (2 tasks).

Parametrized over the registries, so a new method or benchmark is covered by adding it.
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


@pytest.mark.parametrize(("method", "scenario", "benchmark"), TRIPLES)
def test_every_supported_triple_runs(tmp_path, tiny_mnist_root, method, scenario, benchmark):
    data = BENCHMARKS.get(benchmark).defaults["data"]
    over = {f"data.{k}": v for k, v in TWO_TASKS.items() if k in data}
    over |= {
        "data.dir": str(tiny_mnist_root),
        "data.download": False,
        "train.iters": 3,
        "train.batch_size": 8,
        "target.hidden": [16],
        "train.log_every": 1,
    }
    defaults = METHODS.get(method).defaults
    over |= {f"{method}.{k}": v for k, v in TINY.items() if k in defaults}
    cfg = config.resolve(benchmark, method, scenario=scenario, overrides=over)
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
