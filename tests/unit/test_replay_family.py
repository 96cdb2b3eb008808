"""The replay family (HNET+R, HNET+TIR, DGR+distill): the pieces against hand computations, the
protection each method relies on (a test fails if it is removed), checkpoints mid-task, and the
sample grid the report draws."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from steps import build
from steps import train as run_tasks

from hnet import config
from hnet.job.sampler import Sampler
from hnet.methods.common.distill import distill_loss, head_of_each
from hnet.methods.common.replay_model import grid_arrays
from hnet.models.hypernet import mlp
from hnet.models.vae import batched_mlp, mlp_numel, vae_loss

REPLAY_METHODS = ("hnet_r", "hnet_tir", "dgr_distill")


def make(method, scenario="cl3", benchmark="split_digits", seed=0, **over):
    return build(method, scenario, benchmark, seed, **over)


def train(m, tasks, iters, after_task=None):
    """The job loop without files: rows of R for the trained tasks."""
    return run_tasks(m, tasks, iters, after_task)


# -- the pieces --------------------------------------------------------------------------------


def test_batched_mlp_is_the_sequential_mlp_per_weight_vector():
    dims = [6, 5, 4, 3]
    nets = [mlp(dims, "relu") for _ in range(3)]
    flat = torch.stack([torch.cat([p.flatten() for p in n.parameters()]) for n in nets])
    assert flat.shape == (3, mlp_numel(dims))
    x = torch.randn(3, 7, 6)
    out = batched_mlp(flat, dims, x)
    for e, net in enumerate(nets):
        torch.testing.assert_close(out[e], net(x[e]))
    with pytest.raises(ValueError, match="needs"):
        batched_mlp(flat[:, :-1], dims, x)


def test_vae_loss_is_per_pixel_bce_plus_kl_per_pixel():
    g = torch.Generator().manual_seed(0)
    logits, x = torch.randn(4, 10, generator=g), torch.rand(4, 10, generator=g)
    mu, logvar = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    p = torch.sigmoid(logits)
    bce = -(x * p.log() + (1 - x) * (1 - p).log()).mean()
    kl = sum(0.5 * (mu[b] ** 2 + logvar[b].exp() - 1 - logvar[b]).sum() for b in range(4)) / 4
    torch.testing.assert_close(vae_loss(logits, x, mu, logvar), bce + kl / 10)


def test_distillation_matches_the_definition_with_zero_padding():
    g = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(5, 6, generator=g), torch.randn(5, 4, generator=g)
    T = 2.0
    p = F.softmax(teacher / T, -1)
    logq = F.log_softmax(student / T, -1)
    want = -(p * logq[:, :4]).sum(-1).mean() * 4  # the 2 new classes have target 0
    torch.testing.assert_close(distill_loss(student, teacher, T), want)
    with pytest.raises(ValueError):
        distill_loss(teacher, student, T)
    out = torch.arange(2 * 3 * 2.0).view(2, 6)
    assert head_of_each(out, 3, 2, torch.tensor([2, 0])).tolist() == [[4.0, 5.0], [6.0, 7.0]]
    assert head_of_each(out, 1, 2, torch.tensor([2, 0])).tolist() == [[0.0, 1.0], [6.0, 7.0]]


def test_replay_batch_covers_every_earlier_task_in_one_call():
    m = make("hnet_r", **{"train.batch_size": 10})
    train(m, [0, 1, 2], 1)
    m.begin_task(3)
    x, tids = m.rm.replay(3)
    assert x.shape == (3 * math.ceil(10 / 3), m.bench.in_dim)
    assert torch.bincount(tids).tolist() == [4, 4, 4]
    assert x.device == m.device and x.min() >= 0 and x.max() <= 1
    assert m.rm.frozen.shape == (3, m.rm.vae.hnet.target_numel)


def test_task_inference_by_replay_picks_embedding_and_head_per_input():
    """predict's grouped evaluation equals running each input alone with the embedding and head
    the inference network chose (the reference, one input at a time)."""
    m = make("hnet_tir")
    train(m, [0, 1, 2], 30)
    x = torch.cat([next(m.bench.tasks[t].test_batches(20))[0] for t in range(3)])
    pred, task_hat = m.predict(x, 1)
    assert task_hat.tolist() == m.infer_net(x)[:, :3].argmax(-1).tolist()
    assert len(set(task_hat.tolist())) > 1  # the groups path is exercised
    from hnet.models.target import functional_forward, head_outputs

    for i in range(len(x)):
        e = int(task_hat[i])
        out = head_outputs(functional_forward(m.target, m.weights(e), x[i : i + 1]), m.target, e)
        assert int(pred[i]) == int(out.argmax(-1)) + e * m.bench.head_size


def test_decoder_weights_are_sized_like_the_classifiers():
    m = make("hnet_r", **{"hnet_r.dec_size": "cr0.5"})
    ratio = m.rm.vae.hnet.compression_ratio()
    assert abs(ratio - 0.5) / 0.5 <= 0.05
    with pytest.raises(config.ConfigError, match=r"hnet_r\.dec_size"):
        make("hnet_r", **{"hnet_r.dec_size": "huge"})
    with pytest.raises(config.ConfigError, match=r"hnet_tir\.beta"):
        make("hnet_tir", **{"hnet_tir.beta": -1.0})
    sm = config.resolve("split_mnist", "hnet_tir", "cl3")["hnet_tir"]
    assert (sm["dec_preset"], sm["dec_hidden"], sm["rp_beta"], sm["beta"]) == (
        "sm_dec",
        [50, 150],
        0.01,
        0.01,
    )
    pm = config.resolve("permuted_mnist", "hnet_r", "cl3")["hnet_r"]
    assert (pm["dec_preset"], pm["dec_hidden"], pm["rp_beta"], pm["rp_lr"]) == (
        "pm10_dec",
        [400, 400],
        0.1,
        1e-4,
    )


# -- protection: each test fails if the mechanism is removed -----------------------------------


def test_decoder_regularizer_keeps_earlier_tasks_samples():
    """Samples of task 1 from fixed noise, after task 1 and after task 2: with the decoder's
    output regularizer they stay put; with rp_beta = 0 the decoder of task 1 drifts."""
    drift = {}
    for beta in (0.01, 0.0):
        m = make("hnet_r", **{"hnet_r.rp_beta": beta})
        z = torch.randn((1, 16, m.hp["latent"]), generator=torch.Generator().manual_seed(1))
        seen = {}

        def record(m, t, z=z, seen=seen):
            seen[t] = m.rm.vae.sample(m.rm.vae.decoder_weights([0]), [0], z)

        train(m, [0, 1], 80, record)
        drift[beta] = float((seen[1] - seen[0]).abs().mean())
    assert drift[0.01] < 0.02, drift
    assert drift[0.0] > 0.06 and drift[0.0] > 5 * drift[0.01], drift


@pytest.mark.parametrize("method", REPLAY_METHODS)
def test_without_replay_cl3_forgets_task_1(method):
    """Two class-incremental tasks: with replay task 1 is still recognised after task 2,
    without it (replay: false) it is lost completely."""
    acc = {}
    for replay in (True, False):
        m = make(method, **{"data.classes_per_task": 5, f"{method}.replay": replay})
        acc[replay] = train(m, [0, 1], 80)[-1, 0]
    assert acc[True] >= 40.0 and acc[False] <= 5.0, acc


# -- checkpoints -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", REPLAY_METHODS)
def test_state_dict_mid_task_continues_identically(method):
    """Save mid-task 3 (weights_only load), restore into a fresh method, take the same steps:
    every parameter and the next loss are bit-identical."""
    m = make(method, **{"train.batch_size": 16})
    train(m, [0, 1], 5)
    m.begin_task(2)
    data = m.bench.tasks[2]
    sampler = Sampler(0)
    sampler.start_task(data.n_train)
    batches = [data.train_batch(sampler.next(16)) for _ in range(6)]
    for x, y in batches[:3]:
        m.train_step(2, x, y)
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    other = make(method, **{"train.batch_size": 16})
    other.load_state_dict(state)
    for x, y in batches[3:]:
        assert torch.equal(m.train_step(2, x, y), other.train_step(2, x, y))
    assert m.state_dict().keys() == other.state_dict().keys()
    a = dict(_tensors(m.state_dict()))
    b = dict(_tensors(other.state_dict()))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _tensors(tree, prefix=""):
    if isinstance(tree, torch.Tensor):
        yield prefix, tree
    elif isinstance(tree, dict):
        for k, v in tree.items():
            yield from _tensors(v, f"{prefix}.{k}")
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from _tensors(v, f"{prefix}.{i}")


# -- the sample grid ---------------------------------------------------------------------------


def test_sample_grid_unpermutes_permuted_tasks():
    bench = make("hnet_r", benchmark="permuted_digits", scenario="cl1").bench
    raw = bench.tasks[2].x_test[:8]  # uint8 pixels, 8×8 padded to pad_to
    x = bench.tasks[2].inputs(raw)  # permuted network inputs
    grid = grid_arrays(bench, x.unsqueeze(0), [2])
    side = math.isqrt(bench.in_dim)
    want = (raw.float() / 16 * 255).round().to(torch.uint8).reshape(1, 8, side, side)
    assert np.array_equal(grid["images"], want.numpy())
    assert grid["tasks"].tolist() == [2]


@pytest.mark.parametrize("method", REPLAY_METHODS)
def test_sample_grid_after_the_last_task(method):
    m = make(method, **{"data.classes_per_task": 2})
    train(m, range(m.bench.n_tasks), 2)
    grid = m.sample_grid()
    rows = m.bench.n_tasks - 1
    assert grid["images"].shape == (rows, 8, 8, 8) and grid["images"].dtype == np.uint8
    want = [-1] * rows if method == "dgr_distill" else list(range(rows))
    assert grid["tasks"].tolist() == want
    again = m.sample_grid()  # fixed noise: the same grid every time
    assert np.array_equal(grid["images"], again["images"])
    m.hp["replay"] = False
    assert m.sample_grid() is None
