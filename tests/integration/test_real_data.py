"""Paper-setting checks on real Fashion-MNIST (Debian's dataset-fashion-mnist). Slow: minutes.

Run with `make test-slow` (pytest --runslow) on a machine with the package installed.
"""

from pathlib import Path

import pytest

from hnet import config
from hnet.job.run import run_job

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
needs_fmnist = pytest.mark.skipif(
    not FMNIST.exists(), reason="apt-get install dataset-fashion-mnist"
)


@pytest.mark.slow
@needs_fmnist
def test_split_fmnist_cl1_hnet_official_settings_does_not_forget(tmp_path):
    """Issue 2: official Split-MNIST settings → acc_final ≥ 99 % and bwt ≥ −0.5; β = 0 forgets."""
    cfg = config.resolve("split_fmnist", "hnet", seed=0)
    assert cfg["train"]["iters"] == 2000 and cfg["hnet"]["beta"] == 0.01
    res = run_job(cfg, tmp_path / "hnet", progress=False)
    assert res["acc_final"] >= 99.0 and res["bwt"] >= -0.5
    free = run_job(
        config.resolve("split_fmnist", "hnet", seed=0, overrides={"hnet.beta": 0.0}),
        tmp_path / "beta0",
        progress=False,
    )
    assert free["bwt"] < -5.0
