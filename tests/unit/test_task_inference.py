"""HNET+ENT: task identity inferred from the lowest predictive entropy (CL2/CL3)."""

import numpy as np
import pytest
import torch

from hnet import config
from hnet.data import BENCHMARKS
from hnet.data.base import Benchmark, BenchmarkSpec, TaskData
from hnet.job.run import run_job


def blobs(data_cfg, seed):
    """Two tasks in disjoint regions of the plane (centred at x = +4 and x = −4), classes by the
    sign of y. Each training set also holds "background" points spread over the whole plane with
    random labels (outlier exposure), so a net is confident on its own task and unsure
    elsewhere — the situation in which predictive entropy identifies the task. Test sets hold
    only the task's own points."""
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for t, cx in enumerate((4.0, -4.0)):

        def signal(n, cx=cx):
            y = torch.arange(n) % 2
            x = 0.3 * torch.randn(n, 2, generator=g)
            x[:, 0] += cx
            x[:, 1] += torch.where(y == 1, 1.5, -1.5)
            return x, y

        xs, ys = signal(200)
        xb = (torch.rand(200, 2, generator=g) * 2 - 1) * 7.0
        yb = torch.randint(0, 2, (200,), generator=g)
        xte, yte = signal(100)
        tasks.append(
            TaskData(torch.cat([xs, xb]), torch.cat([ys, yb]), xte, yte, classes=(2 * t, 2 * t + 1))
        )
    return Benchmark("blobs", tasks, in_dim=2, head_size=2)


@pytest.fixture
def blobs_benchmark(monkeypatch):
    spec = BenchmarkSpec(
        "blobs",
        "two separable 2-D tasks",
        blobs,
        defaults={
            "target": {"hidden": [16], "activation": "relu"},
            "train": {"iters": 200, "batch_size": 32, "lr": 3e-3},
            "size": "full",
        },
    )
    monkeypatch.setitem(BENCHMARKS._items, "blobs", spec)


@pytest.mark.parametrize("scenario", ["cl2", "cl3"])
def test_entropy_task_inference_on_separable_tasks(tmp_path, blobs_benchmark, scenario):
    cfg = config.resolve(
        "blobs",
        "hnet",
        scenario=scenario,
        overrides={"hnet_arch.hidden": [16], "hnet_arch.task_emb": 4},
    )
    res = run_job(cfg, tmp_path / scenario, progress=False)
    ti = np.array(res["task_inference_matrix"], dtype=float)
    assert ti.shape == (2, 2) and np.isnan(ti[0, 1])  # task 2 not learned yet after task 1
    assert ti[1, 0] >= 95.0 and ti[1, 1] >= 95.0
    assert res["task_inference_final"] >= 95.0
    assert res["acc_final"] >= 90.0


def test_batched_inference_matches_one_embedding_at_a_time(tmp_path, blobs_benchmark):
    from hnet.methods import METHODS
    from hnet.models.target import functional_forward

    cfg = config.resolve("blobs", "hnet", scenario="cl3")
    bench = blobs({}, 0)
    method = METHODS.get("hnet")(cfg, bench, torch.device("cpu"))
    method.seen = 2
    x = bench.tasks[0].x_test
    pred, task_hat = method.infer_by_entropy(x)
    entropies, local = [], []
    for e in range(2):
        out = functional_forward(method.target, method.weights(e), x)[:, 2 * e : 2 * e + 2]
        entropies.append(torch.distributions.Categorical(logits=out).entropy())
        local.append(out.argmax(-1))
    expected_task = torch.stack(entropies).argmin(0)
    assert torch.equal(task_hat, expected_task)
    expected_pred = torch.stack(local).gather(0, expected_task[None])[0] + 2 * expected_task
    assert torch.equal(pred, expected_pred)  # CL3: global class = 2·task + local class
