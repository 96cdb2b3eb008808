"""hnet_scratch: a fresh hypernetwork of the same size per task, kept exactly for evaluation."""

import io

import pytest
import torch
from steps import build
from steps import train as run_tasks

import hnet.methods  # noqa: F401  (importing registers the methods)
from hnet import config


def make(method="hnet_scratch", size="official", seed=0, **over):
    return build(method, "cl1", seed=seed, size=size, **over)


def train(m, tasks, iters=15):
    return run_tasks(m, tasks, iters)


def theta(m):
    return torch.cat([p.detach().flatten() for p in m.hnet.theta().values()])


def roundtrip(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


# cr1.5 is larger than the split_digits target: its weights are kept; official (the digits preset,
# ratio 0.9) is compressive: each task's Θ and embedding are kept.
SIZES = {"cr1.5": "weights", "official": "theta"}


@pytest.mark.parametrize("size", SIZES)
def test_keeps_the_cheaper_form_and_never_forgets(size):
    m = make(size=size)
    R = train(m, range(3))
    assert all(SIZES[size] in k for k in m.kept)
    for j in range(3):  # every later row scores a learned task exactly as right after it
        assert (R[j:, j] == R[j, j]).all()
    assert m.param_counts()["n_params_hnet"] == make("hnet", size=size).hnet.num_params()


def test_first_task_is_hnets_and_later_tasks_start_fresh():
    a, h = make(), make("hnet")
    assert torch.equal(theta(a), theta(h))  # same construction from the job's global RNG
    Ra, Rh = train(a, range(1)), train(h, range(1))
    assert Ra[0, 0] == Rh[0, 0]  # β plays no role on the first task: identical training
    b = make(**{"train.lr": 3e-3})  # different training, same seed
    train(b, range(1))
    end = theta(a)
    a.begin_task(1)
    b.begin_task(1)
    assert not torch.equal(theta(a), end)
    assert torch.equal(theta(a), theta(b))  # the fresh init depends on (seed, task) only
    assert not a.opt.state and not a.emb_opt.state  # fresh Adam moments
    c = make(seed=1)
    c.begin_task(1)
    assert not torch.equal(theta(c), theta(a))


def test_no_regularizer_at_any_beta():
    a, b = make(**{"hnet_scratch.beta": 0.0}), make(**{"hnet_scratch.beta": 10.0})
    assert (train(a, range(2)) == train(b, range(2))).all()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mid_task", [False, True])
def test_state_round_trip_continues_identically(size, mid_task):
    a = make(size=size)
    train(a, range(2))
    x, y = a.bench.tasks[2].train_batch(torch.arange(16))
    if mid_task:
        a.begin_task(2)
        for _ in range(3):
            a.train_step(2, x, y)
    b = make(size=size)
    b.load_state_dict(roundtrip(a.state_dict()))
    if not mid_task:
        a.begin_task(2)
        b.begin_task(2)
    for _ in range(3):
        assert torch.equal(a.train_step(2, x, y), b.train_step(2, x, y))
    assert torch.equal(theta(a), theta(b))
    a.end_task(2)
    b.end_task(2)
    for j in range(3):
        assert a.evaluate(j) == b.evaluate(j)


def test_supports_cl1_only():
    from hnet.errors import ConfigError

    with pytest.raises(ConfigError, match="cl2"):
        config.resolve("split_digits", "hnet_scratch", scenario="cl2")


def test_scratch_reference_names_the_metric_of_its_control(tmp_path):
    """hnet train --scratch RUN: a scratch run gives transfer_vs_scratch, an hnet_scratch run of
    the same size transfer_vs_hnet_scratch; another size or method is refused."""
    import json

    from hnet.errors import HnetError
    from hnet.job.result import scratch_reference

    cfg = {"benchmark": "split_digits", "scenario": "cl1", "seed": 0, "size": "official"}
    R = [[80.0, 10.0], [50.0, 70.0]]
    for method in ("scratch", "hnet_scratch", "finetune"):
        (tmp_path / method).mkdir()
        m = cfg | {"method": method, "acc_matrix": R}
        (tmp_path / method / "metrics.json").write_text(json.dumps(m))
    ref = scratch_reference(tmp_path / "scratch", cfg)
    assert list(ref) == ["transfer_vs_scratch"] and ref["transfer_vs_scratch"].tolist() == [80, 70]
    ref = scratch_reference(tmp_path / "hnet_scratch", cfg)
    assert list(ref) == ["transfer_vs_hnet_scratch"]
    with pytest.raises(HnetError, match=r"its size is 'official'.*matching hnet_scratch run"):
        scratch_reference(tmp_path / "hnet_scratch", cfg | {"size": "cr0.5"})
    with pytest.raises(HnetError, match="'finetune' run, not one of the from-scratch controls"):
        scratch_reference(tmp_path / "finetune", cfg)
