"""The hypernetwork's output layer is stored transposed (``WideLinear``): it computes what
``nn.Linear`` computed, initialises to the same values, and checkpoints written in
``nn.Linear``'s layout (before the change) resume exactly."""

from __future__ import annotations

import copy
import io
from collections import OrderedDict

import pytest
import torch
from torch import nn

from hnet import config, rng
from hnet.data import load_benchmark
from hnet.fast.output_layer import WideLinear, output_layer_transposed
from hnet.methods import METHODS
from hnet.models import hypernet
from hnet.models.hypernet import ChunkedHypernet

CPU = torch.device("cpu")


def test_wide_linear_is_a_transposed_linear():
    torch.manual_seed(0)
    lin, wide = nn.Linear(7, 300), WideLinear(7, 300)
    with torch.no_grad():
        wide.weight.copy_(lin.weight.T)
        wide.bias.copy_(torch.randn(300))
        lin.bias.copy_(wide.bias)
    for shape in [(5, 7), (2, 3, 7)]:
        x = torch.randn(shape)
        torch.testing.assert_close(wide(x), lin(x))
    x = torch.randn(5, 7)
    g = torch.randn(5, 300)
    lin(x).backward(g)
    wide(x).backward(g)
    assert wide.weight.grad.is_contiguous()  # the gradient comes out in the weight's layout
    torch.testing.assert_close(wide.weight.grad, lin.weight.grad.T)
    torch.testing.assert_close(wide.bias.grad, lin.bias.grad)


def test_the_folded_product_is_the_linear_layer_and_survives_moves():
    """With its own parameters the layer computes ``[x, 1] · [W; b]`` (bias stored after the
    weight's last row): same outputs and gradients as ``addmm`` (the path other tensors take,
    e.g. Θ + ΔΘ through ``functional_call``), gradients in the parameters' layout; a move
    (``.double()``) joins the two parameters again; the state dict keeps two tensors."""
    torch.manual_seed(0)
    wide = WideLinear(6, 500)
    with torch.no_grad():
        wide.bias.normal_()  # initialised to zero: give the bias something to carry
    assert wide.folded() is not None
    assert torch.equal(wide.folded(), torch.cat([wide.weight, wide.bias[None]]))
    x = torch.randn(9, 6, requires_grad=True)
    g = torch.randn(9, 500)
    wide(x).backward(g)
    grads = [t.grad.clone() for t in (x, wide.weight, wide.bias)]
    params = {n: p.detach().clone().requires_grad_() for n, p in wide.named_parameters()}
    xx = x.detach().clone().requires_grad_()
    out = torch.func.functional_call(wide, params, (xx,))  # other tensors: addmm
    out.backward(g)
    torch.testing.assert_close(wide(x), out)
    for got, want in zip(grads, (xx.grad, params["weight"].grad, params["bias"].grad), strict=True):
        torch.testing.assert_close(got, want)
    assert wide.weight.grad.stride() == wide.weight.stride()
    wide.double()
    assert wide.weight.dtype == torch.float64 and wide.folded() is not None
    torch.testing.assert_close(wide(x.double()), out.double(), rtol=1e-5, atol=1e-5)
    assert list(wide.state_dict()) == ["weight", "bias"]
    loaded = WideLinear(6, 500).double()
    loaded.load_state_dict(wide.state_dict())
    assert loaded.folded() is not None and torch.equal(loaded.folded(), wide.folded())


@pytest.mark.parametrize("how", ["deepcopy", "assign"])
def test_the_fold_survives_copies_and_assigned_loads(how):
    """Each of these gives the weight and the bias their own storage; the layer joins them
    again, so a copied or reloaded hypernetwork keeps the folded product (not only ``addmm``)."""
    torch.manual_seed(0)
    wide = WideLinear(4, 300)
    if how == "deepcopy":
        other = copy.deepcopy(wide)
    else:
        other = WideLinear(4, 300)
        state = {n: t.clone() for n, t in wide.state_dict().items()}
        other.load_state_dict(state, assign=True)
    assert other.folded() is not None
    assert other.weight.data_ptr() != wide.weight.data_ptr()
    assert torch.equal(other.folded(), wide.folded())


def test_initial_weights_are_those_of_the_linear_layout(monkeypatch):
    """The same seed gives the same initial hypernetwork as with ``nn.Linear`` as output layer
    (the weight is drawn in the (out, in) layout and stored transposed)."""
    torch.manual_seed(3)
    new = ChunkedHypernet(100, 2, task_emb=3, hidden=[4], chunk_size=30, chunk_emb=2)
    monkeypatch.setattr(hypernet, "WideLinear", nn.Linear)  # the plain output layer
    torch.manual_seed(3)
    old = ChunkedHypernet(100, 2, task_emb=3, hidden=[4], chunk_size=30, chunk_emb=2)
    assert isinstance(old.net.fc1, nn.Linear) and isinstance(new.net.fc1, WideLinear)
    for (n, p), q in zip(new.named_parameters(), old.parameters(), strict=True):
        assert torch.equal(p, q.T if n == "net.fc1.weight" else q), n
    torch.manual_seed(3)
    wide = WideLinear(4, 30)
    torch.manual_seed(3)
    lin = nn.Linear(4, 30)
    assert torch.equal(wide.weight, lin.weight.T) and torch.equal(wide.bias, lin.bias)
    embs = new.embeddings([0, 1])
    torch.testing.assert_close(new(embs), old(embs))


def to_linear_layout(state: dict, hnet, opt: dict | None, frozen: dict, prefix: str = ""):
    """What an older hnet wrote: the output weight, its Adam moments and the regularizer's
    frozen copy in (out, in), the module's version 1."""
    name = hnet.output_layer()[0]
    layer = prefix + name.rsplit(".", 1)[0]
    state = OrderedDict(
        (k, v.T.contiguous() if k == prefix + name else v) for k, v in state.items()
    )
    state._metadata = OrderedDict({layer: {"version": 1}})  # type: ignore[attr-defined]
    if opt is not None:
        i = list(hnet.theta()).index(name)
        moments = {
            k: v.T.contiguous() if k.startswith("exp_avg") else v
            for k, v in opt["state"][i].items()
        }
        opt = {**opt, "state": {**opt["state"], i: moments}}
    frozen = {k: v.T.contiguous() if k in ("W", f"theta.{name}") else v for k, v in frozen.items()}
    return state, opt, frozen


def legacy(method_state: dict, m) -> dict:
    """``m``'s state_dict (hnet or hnet_r) rewritten as an older hnet wrote it."""
    if m.name == "hnet":
        hnet, opt, frozen = to_linear_layout(
            method_state["hnet"], m.hnet, method_state["opt"], method_state["reg"]["frozen"]
        )
        assert output_layer_transposed(m.hnet, hnet)
        reg = {**method_state["reg"], "frozen": frozen}
        return {**method_state, "hnet": hnet, "opt": opt, "reg": reg}
    rm = method_state["extra"]["replay_model"]
    vae, theta, frozen = to_linear_layout(
        rm["vae"], m.rm.vae.hnet, rm["opts"]["theta"], rm["reg"]["frozen"], "hnet."
    )
    rm = {
        **rm,
        "vae": vae,
        "opts": {**rm["opts"], "theta": theta},
        "reg": {**rm["reg"], "frozen": frozen},
    }
    return {**method_state, "extra": {**method_state["extra"], "replay_model": rm}}


def make(method, **over):
    cfg = config.resolve("split_digits", method, scenario="cl1", overrides=over)
    bench = load_benchmark("split_digits", cfg["data"], 0)
    rng.seed_globals(0)
    return METHODS.get(method)(cfg, bench, CPU), bench


@pytest.mark.parametrize(
    "method,over",
    [
        ("hnet", {"hnet.reg_impl": "gram"}),
        ("hnet", {"hnet.reg_impl": "direct"}),
        ("hnet", {"hnet.targets": "online", "hnet.reg_impl": "gram"}),
        ("hnet_r", {}),  # the replay model's decoder hypernetwork
    ],
)
def test_a_checkpoint_in_the_linear_layout_resumes_exactly(method, over):
    a, bench = make(method, **{"train.batch_size": 16, **over})
    for t in range(2):  # mid-task 2: the regularizer holds frozen state, Adam has moments
        a.begin_task(t)
        for i in range(3):
            a.train_step(t, *bench.tasks[t].train_batch(torch.arange(16 * i, 16 * i + 16)))
    state = a.state_dict()
    old = legacy(state, a)
    buf = io.BytesIO()  # through a file, as a checkpoint is
    torch.save(old, buf)
    buf.seek(0)
    b, _ = make(method, **{"train.batch_size": 16, **over})
    b.load_state_dict(torch.load(buf, weights_only=True))
    assert b.state_dict().keys() == state.keys()
    x, y = bench.tasks[1].train_batch(torch.arange(48, 64))
    assert torch.equal(a.train_step(1, x, y), b.train_step(1, x, y))
    assert [a.evaluate(t) for t in range(2)] == [b.evaluate(t) for t in range(2)]
    hn_a = a.hnet if method == "hnet" else a.rm.vae.hnet
    hn_b = b.hnet if method == "hnet" else b.rm.vae.hnet
    for (n, p), q in zip(hn_a.named_parameters(), hn_b.parameters(), strict=True):
        assert torch.equal(p, q), n


def test_a_state_dict_without_metadata_loads_by_shape():
    """A plain dict (no torch metadata, e.g. rebuilt by hand) loads in either layout."""
    torch.manual_seed(0)
    h = ChunkedHypernet(100, 2, task_emb=3, hidden=[4], chunk_size=30, chunk_emb=2)
    for transpose in (False, True):
        plain = {
            k: v.T.contiguous() if transpose and k == "net.fc1.weight" else v.clone()
            for k, v in h.state_dict().items()
        }
        g = ChunkedHypernet(100, 2, task_emb=3, hidden=[4], chunk_size=30, chunk_emb=2)
        g.load_state_dict(plain)
        assert all(torch.equal(p, q) for p, q in zip(h.parameters(), g.parameters(), strict=True))
