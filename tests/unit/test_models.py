"""Target nets, hypernetworks and size presets: shapes, parameter accounting, compression."""

import math

import pytest
import torch

from hnet.errors import ConfigError
from hnet.fast import flat_mlp
from hnet.models.hypernet import ChunkedHypernet, FullHypernet, build_hypernet
from hnet.models.sizes import SIZES, count_params, resolve_size
from hnet.models.target import (
    MLP,
    functional_forward,
    head_outputs,
    num_weights,
    other_heads_mask,
    unflatten,
)


def test_meta_target_holds_no_storage_and_matches_real_module():
    torch.manual_seed(0)
    real = MLP(12, [8, 6], head_size=3, n_heads=4)
    with torch.device("meta"):
        meta = MLP(12, [8, 6], head_size=3, n_heads=4)
    assert all(p.is_meta for p in meta.parameters())
    flat = torch.cat([p.detach().flatten() for p in real.parameters()])
    assert flat.numel() == num_weights(meta) == 12 * 8 + 8 + 8 * 6 + 6 + 6 * 12 + 12
    x = torch.randn(5, 12)
    torch.testing.assert_close(functional_forward(meta, flat, x), real(x))


def test_batched_functional_forward_equals_one_by_one():
    with torch.device("meta"):
        net = MLP(7, [5], head_size=2, n_heads=3)
    ws = torch.randn(4, num_weights(net))
    x = torch.randn(9, 7)
    batched = functional_forward(net, ws, x)
    assert batched.shape == (4, 9, 6)
    for e in range(4):
        torch.testing.assert_close(batched[e], functional_forward(net, ws[e], x))


def test_unflatten_rejects_wrong_length():
    with torch.device("meta"):
        net = MLP(3, [2], head_size=1)
    with pytest.raises(ValueError, match="needs"):
        unflatten(net, torch.zeros(num_weights(net) + 1))
    with pytest.raises(ValueError, match="plus 2 of padding"):
        unflatten(net, torch.zeros(num_weights(net) + 1), pad=2)


def test_padded_weights_give_the_same_outputs_and_gradients():
    """A chunked hypernetwork's padded output, split once by the target (``pad``), runs the
    target exactly as the unpadded one and sends the hypernetwork the same gradients."""
    torch.manual_seed(0)
    with torch.device("meta"):
        net = MLP(6, [5], head_size=2, n_heads=2)
    n = num_weights(net)
    h = ChunkedHypernet(
        target_numel=n, n_tasks=1, task_emb=3, hidden=[4], chunk_size=16, chunk_emb=2
    )
    assert h.padding == h.n_chunks * 16 - n > 0
    x = torch.randn(7, 6)
    grads, outs = [], []
    for padded in (False, True):
        h.zero_grad()
        w = h(h.embeddings([0]), padded=padded)[0]
        assert w.shape == (n + (h.padding if padded else 0),)
        out = functional_forward(net, w, x, pad=h.padding if padded else 0)
        out.square().sum().backward()
        outs.append(out.detach())
        grads.append({k: p.grad.clone() for k, p in h.named_parameters()})
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    for k in grads[0]:
        torch.testing.assert_close(grads[0][k], grads[1][k], rtol=0, atol=0, msg=k)


@pytest.mark.parametrize("hidden", [[], [8, 6]], ids=["head-only", "two-hidden"])
@pytest.mark.parametrize("pad", [0, 5])
def test_flat_mlp_is_the_functional_call_path(monkeypatch, hidden, pad):
    """The ReLU MLP's hand-written backward (one flat gradient, padding zero) gives the same
    outputs and weight gradients as ``functional_call`` over the split weights."""
    with torch.device("meta"):
        net = MLP(12, hidden, head_size=3, n_heads=4)
    n = num_weights(net)
    g = torch.Generator().manual_seed(0)
    flat = torch.randn(n + pad, generator=g)
    x, dout = torch.randn(9, 12, generator=g), torch.randn(9, 12, generator=g)
    assert flat_mlp.applies(net, flat, x)
    results = []
    for flat_path in (True, False):
        if not flat_path:
            monkeypatch.setattr(flat_mlp, "applies", lambda *a: False)
        w = flat.clone().requires_grad_()
        out = functional_forward(net, w, x, pad=pad)
        out.backward(dout)
        results.append((out.detach(), w.grad))
    (out_flat, grad_flat), (out_ref, grad_ref) = results
    torch.testing.assert_close(out_flat, out_ref, rtol=0, atol=0)
    # the same products in the same order; BLAS may still pick another kernel for a transposed
    # operand (bitwise on the Intel machines it was written on, 1 ulp apart on AMD EPYC)
    torch.testing.assert_close(grad_flat, grad_ref, rtol=1e-6, atol=1e-6)
    assert not grad_flat[n:].any()


def test_flat_mlp_only_where_it_applies():
    """Other activations, inputs that need a gradient, several weight vectors and calls under
    ``vmap`` (packed seeds) take ``functional_call``; a wrong length is refused either way."""
    with torch.device("meta"):
        relu, tanh = MLP(4, [3], head_size=2), MLP(4, [3], head_size=2, activation_name="tanh")
    n = num_weights(relu)
    flat, x = torch.randn(n), torch.randn(5, 4)
    assert flat_mlp.applies(relu, flat, x)
    assert not flat_mlp.applies(tanh, flat, x)
    assert not flat_mlp.applies(relu, flat, x.clone().requires_grad_())
    assert not flat_mlp.applies(relu, torch.randn(2, n), x)
    seen = []
    torch.func.vmap(lambda w: seen.append(flat_mlp.applies(relu, w, x)) or w.sum())(
        torch.randn(3, n)
    )
    assert seen == [False]
    stacked = torch.randn(3, n)
    vmapped = torch.func.vmap(lambda w: functional_forward(relu, w, x))(stacked)
    for k in range(3):
        torch.testing.assert_close(vmapped[k], functional_forward(relu, stacked[k], x))
    with pytest.raises(ValueError, match="plus 2 of padding"):
        functional_forward(relu, torch.zeros(n + 1), x, pad=2)


def test_head_outputs_and_mask_select_the_task_head():
    with torch.device("meta"):
        net = MLP(4, [3], head_size=2, n_heads=3)
    logits = torch.arange(6.0).expand(2, 6)
    assert head_outputs(logits, net, 1).tolist() == [[2.0, 3.0]] * 2
    mask = other_heads_mask(net, 1)
    assert mask.shape == (num_weights(net),)
    # body (4*3+3) kept; head weight rows 2..3 (3 inputs each) and bias 2..3 kept
    assert int(mask.sum()) == 15 + 2 * 3 + 2
    assert int((~mask).sum()) == 4 * 3 + 4


@pytest.mark.parametrize("chunked", [False, True])
def test_hypernet_shapes_counts_and_init(chunked):
    torch.manual_seed(0)
    arch = dict(
        chunked=chunked,
        chunk_size=37 if chunked else None,
        chunk_emb=5 if chunked else None,
        task_emb=4,
        hidden=[6, 7],
        activation="elu",
    )
    h = build_hypernet(arch, target_numel=200, n_tasks=3)
    assert isinstance(h, ChunkedHypernet if chunked else FullHypernet)
    out = h(h.embeddings([0, 2]))
    assert out.shape == (2, 200)
    assert h.num_params() == count_params(arch, 200, 3)
    assert h.compression_ratio() == pytest.approx(h.num_params() / 200)
    assert sum(p.numel() for p in h.theta().values()) == h.num_params() - 3 * 4
    biases = [p for n, p in h.named_parameters() if n.endswith("bias")]
    assert all(torch.all(b == 0) for b in biases)
    # different embeddings → different weights
    assert not torch.allclose(out[0], out[1])


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "full"])
def test_features_with_given_parameters_equal_functional_call(chunked):
    """``features(embs, params)`` (the regularizer's Θ + ΔΘ) computes what ``functional_call``
    with the same tensors computes, bit for bit, and differentiates into the given tensors."""
    torch.manual_seed(0)
    if chunked:
        h = ChunkedHypernet(100, 3, task_emb=3, hidden=[4, 5], chunk_size=30, chunk_emb=2)
    else:
        h = FullHypernet(100, 3, task_emb=3, hidden=[4, 5])
    embs = h.embeddings([0, 2]).detach()
    params = {
        n: (p + 0.1 * torch.randn_like(p)).detach().requires_grad_() for n, p in h.theta().items()
    }
    mine = h.features(embs, params)
    ref = torch.func.functional_call(h, params, (embs,), {"features": True})
    torch.testing.assert_close(mine, ref, rtol=0, atol=0)
    assert mine.shape == (2, h.layout()[0], 5)
    mine.square().sum().backward()
    output_layer = set(h.output_layer())
    assert all((p.grad is None) == (n in output_layer) for n, p in params.items())
    torch.testing.assert_close(h.features(embs), h(embs, features=True), rtol=0, atol=0)


def test_chunked_hypernet_batches_all_chunks_of_all_tasks():
    h = ChunkedHypernet(
        target_numel=100, n_tasks=2, task_emb=3, hidden=[4], chunk_size=30, chunk_emb=2
    )
    assert h.n_chunks == 4  # ceil(100 / 30)
    calls = []
    h.net[0].register_forward_hook(lambda m, i, o: calls.append(i[0].shape))
    embs = h.embeddings([0, 1])
    out = h(embs)
    assert calls == [torch.Size([2, 4, 5])]  # one call: tasks × chunks × (e_t, c_i)
    # the same weights as running the whole MLP on every chunk and cutting the padded tail
    inp = torch.cat([embs.unsqueeze(1).expand(2, 4, -1), h.chunk_embs.expand(2, 4, -1)], -1)
    padded = h.net(inp).reshape(2, 4 * 30)
    assert out.shape == (2, 100)
    torch.testing.assert_close(out, padded[:, :100])


def test_chunked_hypernet_gradients_match_the_padded_reference():
    """The chunked output's concatenation routes each output gradient to exactly its own
    weight (compared with autograd through the padded reference)."""
    h = ChunkedHypernet(
        target_numel=100, n_tasks=1, task_emb=3, hidden=[4], chunk_size=30, chunk_emb=2
    )
    g = torch.randn(1, 100)
    h(h.embeddings([0])).backward(g)
    fast = {n: p.grad.clone() for n, p in h.named_parameters()}
    h.zero_grad()
    embs = h.embeddings([0])
    inp = torch.cat([embs.unsqueeze(1).expand(1, 4, -1), h.chunk_embs.expand(1, 4, -1)], -1)
    h.net(inp).reshape(1, 120)[:, :100].backward(g)
    for n, p in h.named_parameters():
        torch.testing.assert_close(fast[n], p.grad, msg=n)


@pytest.mark.parametrize(
    "preset,numel,n_tasks,expected",
    [
        # Split MNIST: 784-400-400 with 5 heads of 2 → 478_410 weights, 12 chunks
        (
            "sm",
            784 * 400 + 400 + 400 * 400 + 400 + 400 * 10 + 10,
            5,
            (192 * 10 + 10) + (10 * 10 + 10) + (10 * 42000 + 42000) + 12 * 96 + 5 * 96,
        ),
        # PM-10: 1024-1000-1000 with 10 heads of 10 → 2_126_100 weights, 28 chunks
        (
            "pm10",
            1024 * 1000 + 1000 + 1000 * 1000 + 1000 + 1000 * 100 + 100,
            10,
            (32 * 25 + 25) + (25 * 25 + 25) + (25 * 78000 + 78000) + 28 * 8 + 10 * 24,
        ),
    ],
)
def test_official_presets_param_counts(preset, numel, n_tasks, expected):
    assert count_params(SIZES.get(preset), numel, n_tasks) == expected


@pytest.mark.parametrize("ratio", [0.1, 0.5, 1.0])
@pytest.mark.parametrize(
    "preset,numel,n_tasks",
    [("sm", 478_410, 5), ("digits", 8_970, 5), ("pm10", 2_126_100, 10), ("full", 100_000, 5)],
)
def test_compression_ratio_request_lands_within_5_percent(ratio, preset, numel, n_tasks):
    arch = resolve_size(f"cr{ratio}", preset, numel, n_tasks)
    got = count_params(arch, numel, n_tasks) / numel
    assert abs(got - ratio) / ratio <= 0.05
    if numel < 10_000:  # build it for real and check the module agrees with the formula
        assert build_hypernet(arch, numel, n_tasks).compression_ratio() == pytest.approx(got)


def test_impossible_ratio_is_a_config_error():
    with pytest.raises(ConfigError, match=r"within ±5 %"):
        resolve_size("cr0.0001", "digits", 8_970, 5)


def test_size_overrides_and_unknown_keys():
    arch = resolve_size("official", "sm", 478_410, 5, {"chunk_size": 1000})
    assert arch["chunk_size"] == 1000 and math.ceil(478_410 / 1000) == 479
    with pytest.raises(ConfigError, match=r"hnet_arch\.chunksize"):
        resolve_size("sm", "sm", 478_410, 5, {"chunksize": 1000})
    with pytest.raises(ConfigError, match="Unknown size preset 'huge'"):
        resolve_size("huge", "sm", 478_410, 5)
