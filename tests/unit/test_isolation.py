"""HAT, PackNet and XdG: their masks protect task 1 where fine-tuning the same net forgets it,
HAT's gradient compensation, PackNet's magnitude pruning, XdG's gates, memory, checkpoints."""

import io
import itertools

import pytest
import torch
from steps import build, train

from hnet.errors import ConfigError
from hnet.methods.common.units import unit_layout

ISOLATION = ("hat", "packnet", "xdg")
SMALL = {"target.hidden": [32, 32], "train.batch_size": 32}
ITERS = 40


def eval_inputs(m, task):
    data = m.bench.tasks[task]
    return data.inputs(data.x_test)


def task1_outputs(m, x):
    """Task 1's outputs under its mask; finetune has none (its head only)."""
    with torch.no_grad():
        if hasattr(m, "task_outputs"):
            return m.task_outputs(x, 0)
        m.net.eval()
        return m.logits(x, 0)


def change_of_task1(name, **over):
    """(outputs after task 1, after task 2, accuracies of task 1 then) for ``name``."""
    m = build(name, "cl1", **SMALL, **over)
    x = eval_inputs(m, 0)
    outs, accs = [], []
    for t in (0, 1):
        train(m, tasks=[t], iters=ITERS, evaluate=False)
        outs.append(task1_outputs(m, x))
        accs.append(m.evaluate(0)[0])
    return m, outs, accs


@pytest.fixture(scope="module")
def finetune_change():
    _, (a, b), _ = change_of_task1("finetune")
    return (a - b).abs().max().item()


def test_packnet_keeps_task1_outputs_bit_for_bit_where_finetune_forgets(finetune_change):
    assert finetune_change > 0.2  # the same net without masks moves task 1's outputs
    _, (a, b), (acc1, acc2) = change_of_task1("packnet")
    assert torch.equal(a, b) and acc1 == acc2


def test_xdg_with_disjoint_gates_keeps_task1_outputs_bit_for_bit(finetune_change):
    """Two tasks on disjoint units (and a fresh Adam, so no momentum carries over): nothing
    task 1 reads is written by task 2. Without gates (gating_prop 0) it is fine-tuning."""
    m = build("xdg", "cl1", **SMALL, **{"xdg.reset_optimizer": True})
    for g in m.gates:  # task 1 gets the even units, task 2 the odd ones
        g.zero_()
        g[0, 0::2] = 1
        g[1, 1::2] = 1
    x = eval_inputs(m, 0)
    train(m, tasks=[0], iters=ITERS, evaluate=False)
    before = task1_outputs(m, x)
    train(m, tasks=[1], iters=ITERS, evaluate=False)
    assert torch.equal(before, task1_outputs(m, x))
    _, (a, b), _ = change_of_task1("xdg", **{"xdg.gating_prop": 0.0})
    assert (a - b).abs().max().item() > 0.2


def test_xdg_gates_switch_off_the_drawn_units_at_the_drawn_rate():
    m = build("xdg", "cl1", **{"target.hidden": [400], "xdg.gating_prop": 0.9})
    assert abs(m.gates[0].mean().item() - 0.1) < 0.03  # 5 tasks × 400 units
    seen = {}
    m.net.body.act0.register_forward_hook(lambda mod, i, out: seen.update(h=out))
    x = eval_inputs(m, 2)[:16]
    m.task_outputs(x, 2)
    off = m.gates[0][2] == 0
    assert (seen["h"][:, off] == 0).all() and (seen["h"][:, ~off] != 0).any()
    again = build("xdg", "cl1", **{"target.hidden": [400], "xdg.gating_prop": 0.9})
    assert torch.equal(again.gates[0], m.gates[0])  # regenerated from the seed, not stored
    assert m.memory_bytes()["masks"] == 0


def test_hat_approximately_keeps_task1_where_finetune_forgets(finetune_change):
    _, (a, b), (acc1, acc2) = change_of_task1("hat")
    assert (a - b).abs().max().item() < 0.1 * finetune_change
    assert acc2 >= acc1 - 1.0


def test_hat_gradient_compensation_zeroes_gradients_of_units_used_before():
    m = build("hat", "cl1", **SMALL)
    train(m, tasks=[0], iters=ITERS, evaluate=False)
    used = [mp == 1.0 for mp in m.mask_pre]  # units task 1 uses fully (σ(400·e) rounds to 1)
    assert all(u.any() and (~u).any() for u in used)
    m.begin_task(1)
    data = m.bench.tasks[1]
    w0, w1 = m.net.body.fc0.weight, m.net.body.fc1.weight
    before = [w0.detach().clone(), w1.detach().clone()]
    m.train_step(1, *data.train_batch(torch.arange(32)))
    both = used[1][:, None] & used[0][None, :]  # fc1 entries between two used units
    assert (w0.grad[used[0]] == 0).all() and (w0.grad[~used[0]] != 0).any()
    assert (m.net.body.fc0.bias.grad[used[0]] == 0).all()
    assert (w1.grad[both] == 0).all() and (w1.grad[~both] != 0).any()
    assert torch.equal(w0[used[0]], before[0][used[0]]) and torch.equal(w1[both], before[1][both])


def test_hat_anneals_s_within_each_epoch_from_1_over_smax_to_smax():
    m = build("hat", "cl1")
    m.begin_task(0)
    cycle = -(-m.bench.tasks[0].n_train // m.cfg["train"]["batch_size"])
    s = []
    for _ in range(cycle + 1):
        s.append(m.s_now(0))
        m.step += 1
    assert s[0] == pytest.approx(1 / 400) and s[cycle] == s[0]
    assert all(b > a for a, b in itertools.pairwise(s[:cycle])) and s[-2] < 400


def test_packnet_prunes_each_layer_to_its_fraction_keeping_the_largest_weights():
    m = build("packnet", "cl1", **{"packnet.prune": 0.6})
    train(m, tasks=[0], iters=5, evaluate=False)  # pruned at step 4 of 5 (retrain 0.25)
    m2 = build("packnet", "cl1", **{"packnet.prune": 0.6})
    m2.begin_task(0)
    before = {n: p.detach().clone() for n, p in m2.net.named_parameters()}
    m2.prune(0)
    for name, p in m2.net.named_parameters():
        own = m2.owner[name]
        if not m2.prunable(name, p):
            assert (own == 0).all()
            continue
        kept = own == 1
        assert int(kept.sum()) == round(0.4 * p.numel())
        assert before[name][kept].abs().min() >= before[name][~kept].abs().max()
        assert (p[~kept] == 0).all() and torch.equal(p[kept], before[name][kept])
    m2.end_task(0)
    m2.begin_task(1)
    with torch.no_grad():
        for p in m2.net.parameters():
            p.add_(1.0)  # the free weights are trained by task 2 (here: moved)
    m2.prune(1)
    w = m2.net.body.fc0.weight
    own = m2.owner["body.fc0.weight"]
    assert int((own == 2).sum()) == round(0.4 * round(0.6 * w.numel()))
    # biases are the first task's, and each head's rows its own task's
    assert (m2.owner["body.fc0.bias"] == 1).all()
    hs = m2.net.head_size
    assert (m2.owner["head.weight"][:hs] == 1).all() and (m2.owner["head.weight"][hs:] == 0).all()
    assert (m.owner["body.fc0.weight"] == 1).sum() == round(0.4 * w.numel())


def test_memory_counts_what_each_method_stores():
    hat, pn, xdg = (build(n, "cl1") for n in ISOLATION)
    for m in (hat, pn, xdg):
        train(m, tasks=[0, 1], iters=2, evaluate=False)
    units = sum(unit_layout(hat.net).sizes)
    assert hat.memory_bytes() == {"embeddings": 2 * units * 4, "masks": units * 4}
    assert pn.memory_bytes() == {"masks": sum(p.numel() for p in pn.net.parameters())}
    assert xdg.memory_bytes() == {"masks": 0}


@pytest.mark.parametrize("name", ISOLATION)
def test_a_mid_task_checkpoint_continues_exactly(name):
    """state_dict in the middle of task 2 (PackNet: in its retraining phase, after pruning),
    loaded into a differently initialised instance: both continue identically."""
    over = {**SMALL, "train.iters": 8}
    a = build(name, "cl1", **over)
    train(a, tasks=[0], iters=8, evaluate=False)
    a.begin_task(1)
    data = a.bench.tasks[1]
    batches = [data.train_batch(torch.arange(i * 8, i * 8 + 8)) for i in range(8)]
    for x, y in batches[:7]:
        a.train_step(1, x, y)
    if name == "packnet":
        assert a.pruned
    b = build(name, "cl1", **over)
    with torch.no_grad():
        for p in b.net.parameters():
            p.normal_()  # whatever it held is overwritten by the checkpoint
    buf = io.BytesIO()  # through a file, as a checkpoint is: nothing shared with ``a``
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b.load_state_dict(torch.load(buf, weights_only=True))
    for m in (a, b):
        m.train_step(1, *batches[7])
        m.end_task(1)
    for t in (0, 1):
        x = eval_inputs(a, t)
        assert torch.equal(a.task_outputs(x, t), b.task_outputs(x, t))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("hat.smax", 0.5),
        ("hat.c", -1.0),
        ("packnet.prune", 1.0),
        ("packnet.retrain", -0.1),
        ("xdg.gating_prop", 1.0),
    ],
)
def test_bad_hyperparameters_are_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build(key.split(".")[0], "cl1", **{key: value})


@pytest.mark.parametrize("kind", ["mlp", "zenke", "resnet32"])
def test_unit_layout_names_every_weight_a_gated_off_unit_depends_on(kind):
    """The premise of HAT's compensation and XdG's isolation, per target: with random binary
    gates on, changing every parameter entry whose mask min(post, pre) is 0 leaves the gated
    net's outputs unchanged, while changing the masked-in entries does not."""
    from hnet.methods.common.units import Gates
    from hnet.models.target import build_target

    torch.manual_seed(0)
    cfg = {"kind": kind, "hidden": [16, 16], "activation": "relu", "dropout": [0.0, 0.0]}
    net = build_target(cfg, 3 * 32 * 32, 2, 2, (3, 32, 32)).eval()
    layout = unit_layout(net)
    gates = [(torch.rand(n) < 0.5).float() for n in layout.sizes]
    Gates(net, layout).set(gates)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        ref = net(x)
        masks = {n: layout.weight_mask(n, p.shape, gates) for n, p in net.named_parameters()}
        assert {n for n, m in masks.items() if m is None} == {"head.weight", "head.bias"}
        saved = {n: p.clone() for n, p in net.named_parameters()}
        for n, p in net.named_parameters():
            if masks[n] is not None:
                p.add_(torch.randn_like(p) * (masks[n] == 0))
        assert torch.equal(net(x), ref)
        for n, p in net.named_parameters():
            p.copy_(saved[n])
            if masks[n] is not None:
                p.add_(torch.randn_like(p) * masks[n])
        assert not torch.allclose(net(x), ref)


@pytest.mark.parametrize("kind", ["zenke", "resnet32"])
def test_packnet_keeps_task1_bit_for_bit_on_the_conv_targets(tiny_data_root, kind):
    """On the conv targets too (ResNet-32: BatchNorm statistics per task, γ/β frozen after task
    1; ZenkeNet: dropout off at test), task 1's outputs survive task 2 exactly."""
    from registry_cases import CONV, tiny_overrides

    over = tiny_overrides(CONV[kind], tiny_data_root)
    del over["target.kind"], over["target.hidden"]
    over |= {"train.iters": 4, "train.batch_size": 4, "train.epochs": 0}
    m = build("packnet", "cl1", benchmark=CONV[kind], **over)
    assert m.cfg["target"]["kind"] == kind
    x = eval_inputs(m, 0)[:8]
    train(m, tasks=[0], iters=4, evaluate=False)
    before = m.task_outputs(x, 0)
    train(m, tasks=[1], iters=4, evaluate=False)
    assert torch.equal(before, m.task_outputs(x, 0))
