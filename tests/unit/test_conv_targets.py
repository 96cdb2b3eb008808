"""Convolutional targets (ResNet-32, ZenkeNet) and per-task BatchNorm statistics.

The functional path (meta module + flat weights + flat stats) must agree with an ordinary module
holding the same weights and buffers, and one task's statistics must never leak into another's.
"""

import pytest
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from hnet.errors import ConfigError
from hnet.models.batchnorm import (
    get_stats,
    init_stats,
    num_stats,
    set_stats,
    stat_shapes,
    unflatten_stats,
)
from hnet.models.hypernet import ChunkedHypernet
from hnet.models.resnet import ResNet32
from hnet.models.target import (
    build_target,
    functional_forward,
    head_outputs,
    num_weights,
    other_heads_mask,
    unflatten,
)
from hnet.models.zenke import ZenkeNet

CIFAR, FMNIST = (3, 32, 32), (1, 28, 28)
TOL = {"rtol": 1e-4, "atol": 1e-5}


def make(kind, in_shape=CIFAR, n_heads=6, meta=False, **kw):
    cls = {"resnet32": ResNet32, "zenke": ZenkeNet}[kind]
    if meta:
        with torch.device("meta"):
            return cls(in_shape, 10, n_heads, **kw)
    return cls(in_shape, 10, n_heads, **kw)


def random_stats(net, n=None):
    """Statistics far from the fresh (0, 1) ones, so using the wrong set shows."""
    stats = init_stats(net, n)
    for name, value in unflatten_stats(net, stats).items():
        if name.endswith("running_mean"):
            value.normal_(0.0, 0.3)
        else:
            value.uniform_(0.5, 2.0)
    return stats


def real_with_flat(kind, **kw):
    """An ordinary module and its weights as one flat vector (γ/β perturbed away from 1/0)."""
    real = make(kind, **kw)
    flat = parameters_to_vector(real.parameters()).detach()
    flat = flat + 0.05 * torch.randn_like(flat)
    vector_to_parameters(flat, real.parameters())
    return real, flat


# -- parameter accounting, written out layer by layer --------------------------------------------
def conv3(c_in, c_out):
    return 9 * c_in * c_out + c_out  # 3×3 kernel + bias


def linear(d_in, d_out):
    return d_in * d_out + d_out


def resnet32_count(c_in, n_out):
    total, width = conv3(c_in, 16) + 2 * 16, 16  # stem conv + BN γ/β
    for stage_width in (16, 32, 64):
        for _ in range(5):  # conv a + BN, conv b + BN; shortcuts have no parameters
            total += conv3(width, stage_width) + conv3(stage_width, stage_width) + 4 * stage_width
            width = stage_width
    return total + linear(64, n_out)


def zenke_count(c, h, w, n_out):
    def side(s):
        return ((s - 2) // 2 - 2) // 2  # valid conv, pool, valid conv, pool

    convs = conv3(c, 32) + conv3(32, 32) + conv3(32, 64) + conv3(64, 64)
    return convs + linear(64 * side(h) * side(w), 512) + linear(512, n_out)


@pytest.mark.parametrize("in_shape", [CIFAR, FMNIST])
def test_parameter_counts_match_the_layer_by_layer_formula(in_shape):
    resnet, zenke = make("resnet32", in_shape, meta=True), make("zenke", in_shape, meta=True)
    assert num_weights(resnet) == resnet32_count(in_shape[0], 60)
    assert num_weights(zenke) == zenke_count(*in_shape, 60)
    # BN running statistics are buffers: counted by num_stats, never by num_weights
    assert num_stats(resnet) == 2 * (16 + 10 * (16 + 32 + 64))
    assert num_weights(resnet) == sum(p.numel() for p in resnet.parameters())
    assert num_stats(zenke) == 0
    if in_shape == CIFAR:  # the published sizes: ≈ 468.5k and ≈ 1.28M
        print(f"\nResNet-32: {num_weights(resnet)}  ZenkeNet: {num_weights(zenke)}")
        assert abs(num_weights(resnet) - 468_500) < 100
        assert abs(num_weights(zenke) - 1_280_000) < 5_000


# -- shapes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["resnet32", "zenke"])
@pytest.mark.parametrize(("in_shape", "n_heads"), [(CIFAR, 6), (FMNIST, 6), (CIFAR, 3)])
def test_output_shapes_real_and_functional(kind, in_shape, n_heads):
    real = make(kind, in_shape, n_heads).eval()
    x = torch.rand(2, *in_shape)
    assert real(x).shape == (2, n_heads * 10)
    assert real(x.flatten(1)).shape == (2, n_heads * 10)  # flat inputs are reshaped
    meta = make(kind, in_shape, n_heads, meta=True)
    stats = init_stats(meta) if num_stats(meta) else None
    out = functional_forward(meta, 0.05 * torch.randn(num_weights(meta)), x, stats)
    assert out.shape == (2, n_heads * 10)
    assert head_outputs(out, meta, n_heads - 1).shape == (2, 10)


def test_build_target_dispatches_on_kind_and_checks_the_shape():
    with torch.device("meta"):
        assert isinstance(build_target({"kind": "resnet32"}, 3072, 10, 6, CIFAR), ResNet32)
        zenke = build_target({"kind": "zenke", "in_shape": [1, 28, 28]}, 784, 10, 5)
    assert isinstance(zenke, ZenkeNet) and zenke.n_heads == 5 and zenke.head_size == 10
    with pytest.raises(ConfigError, match="mlp, resnet32, zenke"):
        build_target({"kind": "vgg"}, 3072, 10, 6)
    with pytest.raises(ConfigError, match=r"target\.kind='zenke'.*image"):
        build_target({"kind": "zenke"}, 3072, 10, 6)
    with pytest.raises(ValueError, match="784"):
        build_target({"kind": "resnet32"}, 784, 10, 6, CIFAR)


# -- functional forward == ordinary module ---------------------------------------------------------
@pytest.mark.parametrize("kind", ["resnet32", "zenke"])
def test_functional_eval_equals_module_with_the_same_weights_and_stats(kind):
    torch.manual_seed(0)
    real, flat = real_with_flat(kind)
    meta = make(kind, meta=True)
    stats = random_stats(real) if num_stats(real) else None
    if stats is not None:
        set_stats(real, stats)
        torch.testing.assert_close(get_stats(real), stats)
    x = torch.rand(4, *CIFAR)
    assert meta.training  # a fresh module; the call runs it in eval mode and restores the flag
    torch.testing.assert_close(functional_forward(meta, flat, x, stats), real.eval()(x), **TOL)
    assert meta.training


def test_functional_train_equals_module_including_running_stat_updates():
    torch.manual_seed(1)
    real, flat = real_with_flat("resnet32")
    meta = make("resnet32", meta=True)
    stats = random_stats(real)
    set_stats(real, stats)
    x = torch.rand(4, *CIFAR)
    for _ in range(2):
        out = functional_forward(meta, flat, x, stats, train=True)
        torch.testing.assert_close(out, real.train()(x), **TOL)
    torch.testing.assert_close(stats, get_stats(real), **TOL)  # updated in place, momentum 0.1


def test_zenke_train_mode_applies_the_same_dropout_as_the_module():
    real, flat = real_with_flat("zenke")
    meta = make("zenke", meta=True)
    x = torch.rand(4, *CIFAR)
    torch.manual_seed(2)
    out = functional_forward(meta, flat, x, train=True)
    torch.manual_seed(2)
    torch.testing.assert_close(out, real.train()(x), **TOL)
    assert not torch.allclose(out, real.eval()(x))  # dropout was active


# -- batches of weight vectors ---------------------------------------------------------------------
def test_vmapped_eval_with_per_embedding_stats_equals_a_loop():
    torch.manual_seed(3)
    meta = make("resnet32", meta=True)
    weights = 0.05 * torch.randn(3, num_weights(meta))
    stats = random_stats(meta, 3)
    x = torch.rand(4, *CIFAR)
    batched = functional_forward(meta, weights, x, stats)
    assert batched.shape == (3, 4, 60)
    for e in range(3):
        torch.testing.assert_close(batched[e], functional_forward(meta, weights[e], x, stats[e]))
    shared = functional_forward(meta, weights, x, stats[0])  # one set for every vector
    torch.testing.assert_close(shared[1], functional_forward(meta, weights[1], x, stats[0]))


def test_batched_train_mode_updates_each_vectors_own_stats():
    torch.manual_seed(4)
    meta = make("resnet32", meta=True)
    weights = 0.05 * torch.randn(2, num_weights(meta))
    stats, loop_stats = random_stats(meta, 2), None
    loop_stats = stats.clone()
    x = torch.rand(4, *CIFAR)
    batched = functional_forward(meta, weights, x, stats, train=True)
    for e in range(2):
        out = functional_forward(meta, weights[e], x, loop_stats[e], train=True)
        torch.testing.assert_close(batched[e], out)
    torch.testing.assert_close(stats, loop_stats)
    with pytest.raises(ValueError, match="one set of stats per vector"):
        functional_forward(meta, weights, x, stats[0], train=True)


def test_zenke_vmapped_eval_equals_a_loop():
    meta = make("zenke", FMNIST, meta=True)
    weights = 0.05 * torch.randn(2, num_weights(meta))
    x = torch.rand(3, *FMNIST)
    batched = functional_forward(meta, weights, x)
    for e in range(2):
        torch.testing.assert_close(batched[e], functional_forward(meta, weights[e], x))


# -- per-task statistics ---------------------------------------------------------------------------
def test_training_one_task_leaves_the_other_tasks_stats_alone():
    torch.manual_seed(5)
    meta = make("resnet32", meta=True)
    _, flat = real_with_flat("resnet32")  # γ ≈ 1, so the statistics visibly matter
    stats = init_stats(meta, n_tasks=2)  # what a method holds: one row per task
    task1 = stats[0].clone()
    for _ in range(3):  # "train" task 2 on shifted inputs, through the row view
        functional_forward(meta, flat, 3 * torch.rand(8, *CIFAR) + 1, stats[1], train=True)
    torch.testing.assert_close(stats[0], task1)
    assert not torch.allclose(stats[1], task1)
    x = torch.rand(4, *CIFAR)
    out1, out2 = (functional_forward(meta, flat, x, stats[t]) for t in (0, 1))
    assert not torch.allclose(out1, out2, atol=1e-3)


def test_baseline_can_swap_task_stats_in_and_out():
    torch.manual_seed(6)
    real = make("resnet32")
    x = torch.rand(4, *CIFAR)
    real.train()(3 * x + 1)
    task1 = get_stats(real)
    ref = real.eval()(x)
    set_stats(real, init_stats(real))
    real.train()(x)  # another task trains its own set
    assert not torch.allclose(real.eval()(x), ref, atol=1e-3)
    set_stats(real, task1)
    torch.testing.assert_close(real.eval()(x), ref)
    assert [n for n, _ in stat_shapes(real)][:2] == ["stem.1.running_mean", "stem.1.running_var"]


def test_batchnorm_net_without_stats_is_an_error():
    meta = make("resnet32", meta=True)
    with pytest.raises(ValueError, match="running statistics"):
        functional_forward(meta, torch.zeros(num_weights(meta)), torch.rand(1, *CIFAR))


# -- gradients -------------------------------------------------------------------------------------
def test_gradient_reaches_every_generated_weight_including_bn_affine():
    torch.manual_seed(7)
    meta = make("resnet32", meta=True)
    _, flat = real_with_flat("resnet32")
    flat.requires_grad_(True)
    stats = random_stats(meta)
    x = torch.rand(4, *CIFAR)
    functional_forward(meta, flat, x, stats).square().mean().backward()
    grads = unflatten(meta, flat.grad)
    assert all(g.abs().sum() > 0 for g in grads.values())  # eval: conv biases matter too
    flat.grad = None
    functional_forward(meta, flat, x, stats, train=True).square().mean().backward()
    bn = [n for n in grads if n.endswith((".1.weight", ".1.bias"))]
    assert len(bn) == 2 * 31
    assert all(unflatten(meta, flat.grad)[n].abs().sum() > 0 for n in bn)
    assert not stats.requires_grad


def test_chunked_hypernetwork_trains_a_resnet_end_to_end():
    torch.manual_seed(8)
    meta = make("resnet32", meta=True)
    hnet = ChunkedHypernet(num_weights(meta), 2, 32, [], chunk_size=7000, chunk_emb=32)
    stats = init_stats(meta, 2)
    weights = hnet(hnet.embeddings([1]))[0]
    logits = functional_forward(meta, weights, torch.rand(4, *CIFAR), stats[1], train=True)
    out = head_outputs(logits, meta, 1)
    torch.nn.functional.cross_entropy(out, torch.arange(4)).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in hnet.theta().values())
    assert hnet.task_embs[1].grad.abs().sum() > 0 and hnet.task_embs[0].grad is None


# -- head masking --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["resnet32", "zenke"])
def test_other_heads_mask_hides_exactly_the_other_heads_rows(kind):
    meta = make(kind, n_heads=6, meta=True)
    mask = other_heads_mask(meta, 2)
    assert mask.shape == (num_weights(meta),)
    parts = unflatten(meta, mask)
    keep = torch.zeros(60, dtype=torch.bool)
    keep[20:30] = True
    assert torch.equal(parts["head.bias"], keep)
    assert torch.equal(parts["head.weight"], keep[:, None].expand_as(parts["head.weight"]))
    assert all(parts[n].all() for n in parts if not n.startswith("head."))
    fan_in = meta.head.in_features
    assert (~mask).sum() == 5 * 10 * (fan_in + 1)


# -- CUDA ------------------------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", ["resnet32", "zenke"])
def test_functional_forward_on_cuda_matches_cpu(kind):
    torch.manual_seed(9)
    meta = make(kind, meta=True)
    weights = 0.05 * torch.randn(2, num_weights(meta))
    stats = random_stats(meta, 2) if num_stats(meta) else None
    x = torch.rand(4, *CIFAR)
    cpu = functional_forward(meta, weights, x, stats)
    gpu_stats = None if stats is None else stats.cuda()
    gpu = functional_forward(meta, weights.cuda(), x.cuda(), gpu_stats)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-4)
    if gpu_stats is not None:
        functional_forward(meta, weights[0].cuda(), x.cuda(), gpu_stats[0], train=True)
        functional_forward(meta, weights[0], x, stats[0], train=True)
        torch.testing.assert_close(gpu_stats.cpu(), stats, rtol=1e-3, atol=1e-4)


def test_mlp_keeps_the_old_call_signature():
    with torch.device("meta"):
        meta = build_target({"hidden": [8], "activation": "relu"}, 5, 2, 3)
    real = build_target({"hidden": [8], "activation": "relu"}, 5, 2, 3)
    flat = parameters_to_vector(real.parameters()).detach()
    x = torch.rand(4, 5)
    torch.testing.assert_close(functional_forward(meta, flat, x), real(x))
    assert functional_forward(meta, flat.expand(2, -1), x).shape == (2, 4, 6)


@pytest.mark.parametrize("bench", ["split_cifar10_100", "split_cifar10_100_zenke"])
def test_official_and_ratio_sizes_solve_against_the_conv_target(bench):
    """The official hypernetworks have the paper's ratios (≈ 0.98 and ≈ 0.93, all six heads
    counted), and cr<ratio> sizes land within 5 % of the request for both conv targets."""
    from hnet import config
    from hnet.data.base import Benchmark
    from hnet.methods.hnet import HNET
    from hnet.models.sizes import count_params

    shape = Benchmark(bench, [None] * 6, 3072, 10, in_shape=CIFAR)  # no data needed
    for size, ratio in (("official", None), ("cr0.1", 0.1), ("cr0.5", 0.5), ("cr1.0", 1.0)):
        cfg = config.resolve(bench, "hnet", size=size)
        target, arch = HNET.architecture(cfg, shape, 6)
        n = num_weights(target)
        assert n == (468_540 if bench == "split_cifar10_100" else 1_276_508)
        got = count_params(arch, n, 6) / n
        if ratio is None:
            assert got == pytest.approx(0.976 if bench == "split_cifar10_100" else 0.926, abs=1e-3)
        else:
            assert got == pytest.approx(ratio, rel=0.05)
