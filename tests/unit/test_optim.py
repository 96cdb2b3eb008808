"""``hnet.methods.common.optim.step``: the fused Adam kernel called directly
(:func:`hnet.fast.adam.direct_step`) is ``Optimizer.step``."""

import copy

import pytest
import torch

from hnet.fast import adam as fast_adam
from hnet.methods.common import optim

DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
    ),
]


def model_and_loss(seed=0, device="cpu"):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    net.to(device)
    unused = torch.nn.Parameter(torch.randn(4, device=device))  # no gradient: Adam skips it
    x = torch.randn(8, 6, device=device)
    return net, unused, lambda: net(x).pow(2).mean()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fused", [True, None], ids=["fused", "default"])
def test_step_is_bitwise_the_optimizers_own(fused, device):
    """Over several steps, a learning-rate change and a parameter without gradient, the direct
    call leaves parameters, moments and step counts bit for bit where ``opt.step()`` does."""
    runs = []
    for direct in (False, True):
        net, unused, loss = model_and_loss(device=device)
        opt = torch.optim.Adam([*net.parameters(), unused], lr=1e-2, fused=fused)
        for i in range(5):
            if i == 3:
                opt.param_groups[0]["lr"] = 3e-3  # a schedule's change is read every step
            opt.zero_grad(set_to_none=True)
            loss().backward()
            optim.step(opt) if direct else opt.step()
        runs.append(
            (copy.deepcopy(opt.state_dict()), [p.detach().clone() for p in net.parameters()])
        )
    (state_a, params_a), (state_b, params_b) = runs
    for a, b in zip(params_a, params_b, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert state_a["state"].keys() == state_b["state"].keys() and 4 not in state_a["state"]
    for k, st in state_a["state"].items():
        for name, t in st.items():
            torch.testing.assert_close(t, state_b["state"][k][name], rtol=0, atol=0)


def test_only_a_plain_fused_adam_is_stepped_directly():
    net, _, _ = model_and_loss()
    assert fast_adam.plain_fused(torch.optim.Adam(net.parameters(), fused=True))
    for opt in (
        torch.optim.Adam(net.parameters()),  # not fused
        torch.optim.Adam(net.parameters(), fused=True, weight_decay=1e-4),
        torch.optim.Adam(net.parameters(), fused=True, amsgrad=True),
        torch.optim.AdamW(net.parameters(), fused=True),
        torch.optim.SGD(net.parameters(), lr=0.1),
    ):
        assert not fast_adam.plain_fused(opt), opt


def test_step_falls_back_to_the_optimizer_for_anything_else():
    """SGD (no fused Adam state at all) still steps, through its own ``step``."""
    net, _, loss = model_and_loss()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    before = [p.detach().clone() for p in net.parameters()]
    loss().backward()
    optim.step(opt)
    assert all(not torch.equal(a, p) for a, p in zip(before, net.parameters(), strict=True))
