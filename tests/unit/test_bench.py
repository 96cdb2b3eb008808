"""``hnet bench``: FLOPs and bytes against the measured peak and bandwidth, chosen task
indices, regularizer memory per previous task, baselines (Split CIFAR-10/100 with the
convolutional targets: tests/integration/test_bench_cifar.py)."""

from __future__ import annotations

import pytest

from hnet import config
from hnet.job.bench import run_bench


def test_bench_reports_flops_and_regularizer_memory_at_chosen_tasks():
    """Steps timed only at the requested task indices; stored targets grow by the same amount
    per previous task, online targets (Θ* only) stay constant."""
    over = {"train.batch_size": 16, "hnet.reg_impl": "direct"}
    lines: list[str] = []
    by_mode = {}
    for mode in ("stored", "online"):
        cfg = config.resolve(
            "split_digits", "hnet", overrides={**over, "hnet.targets": mode}, threads=1
        )
        by_mode[mode] = res = run_bench(
            cfg, prev_tasks=[1, 3], steps=1, repeats=1, echo=lines.append
        )
        assert set(res["step_seconds"]) == {1, 3} and set(res["reg_seconds"]) == {1, 3}
        assert all(f > 0 for f in res["step_flops"].values()) and res["matmul_peak_flops"] > 0
        for k in (1, 3):  # the roofline charges every op at least its FLOPs at the peak
            assert res["step_bytes"][k] > 0 and res["step_ops"][k] > 10
            assert res["roofline_seconds"][k] >= res["step_flops"][k] / res["matmul_peak_flops"]
    stored, online = by_mode["stored"]["reg_state_mb"], by_mode["online"]["reg_state_mb"]
    assert stored[3] == pytest.approx(3 * stored[1])
    assert online[3] == online[1] > 0
    assert any("of peak" in line and "of roof" in line for line in lines)


def test_bench_times_a_baseline_without_the_regularizer_section():
    cfg = config.resolve("split_digits", "finetune", overrides={"train.batch_size": 16}, threads=1)
    res = run_bench(cfg, steps=1, repeats=1, echo=lambda *_: None)
    assert set(res["step_seconds"]) == set(range(5)) and "reg_seconds" not in res
    assert all(f > 0 for f in res["step_flops"].values())
