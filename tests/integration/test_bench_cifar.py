"""``hnet bench`` on Split CIFAR-10/100 with each convolutional target (tiny real-format
files): per-task BatchNorm statistics and augmentation in the timed steps, on the CPU and on
CUDA. In the integration tier: a ResNet-32 step takes seconds on two cores."""

from __future__ import annotations

import pytest
import torch

from hnet import config
from hnet.job.bench import run_bench

TARGETS = {"resnet32": "split_cifar10_100", "zenke": "split_cifar10_100_zenke"}
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"))]  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", list(TARGETS))
def test_bench_times_steps_and_regularizer_on_split_cifar(tiny_data_root, kind, device):
    over = {
        "data.dir": str(tiny_data_root),
        "data.download": False,
        "data.check_counts": False,
        "data.n_tasks": 3,
        "train.batch_size": 4,
    }
    cfg = config.resolve(TARGETS[kind], "hnet", overrides=over, threads=1, device=device)
    lines: list[str] = []
    res = run_bench(cfg, steps=1, repeats=1, echo=lines.append)
    assert set(res["step_seconds"]) == {0, 1, 2} and set(res["reg_seconds"]) == {1, 2}
    assert all(s > 0 for s in res["step_seconds"].values())
    assert all(r["direct"] > 0 and r["loop"] > 0 for r in res["reg_seconds"].values())
    assert (
        f"target {468_540 - 3 * 650 if kind == 'resnet32' else 1_276_508 - 3 * 5130:,}"
        in (lines[0])
    )  # 3 of the 6 heads
    if device == "cuda":
        assert "peak_cuda_mb" in res
