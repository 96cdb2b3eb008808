"""EWC, Online EWC, SI and MAS: penalty formulas, importance estimates, that the penalty protects
an earlier task, tuned configs, checkpoints and end-to-end jobs."""

import io
import json

import pytest
import torch
import torch.nn.functional as F

import hnet.methods.ewc
import hnet.methods.mas
import hnet.methods.si  # importing the modules registers the methods
from hnet import config
from hnet.cli import main
from hnet.data import load_benchmark
from hnet.errors import ConfigError
from hnet.job.run import run_job
from hnet.methods import METHODS
from hnet.methods.ewc import flat_params

STRENGTH = {"ewc": "lambda", "online_ewc": "lambda", "si": "c", "mas": "lambda"}
METHOD_NAMES = list(STRENGTH)


def build(name, scenario="cl1", seed=0, init_seed=None, **over):
    cfg = config.resolve("split_digits", name, scenario=scenario, seed=seed, overrides=over)
    bench = load_benchmark("split_digits", cfg["data"], seed)
    torch.manual_seed(seed if init_seed is None else init_seed)
    return METHODS.get(name)(cfg, bench, torch.device("cpu"))


def batches(n, batch_size, steps, gen):
    """Index batches of reshuffled epochs, in an order fixed by ``gen``."""
    perm, pos = torch.randperm(n, generator=gen), 0
    for _ in range(steps):
        if pos + batch_size > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        yield perm[pos : pos + batch_size]
        pos += batch_size


def train(method, tasks, iters, gen):
    for t in tasks:
        method.begin_task(t)
        data = method.bench.tasks[t]
        for idx in batches(data.n_train, 64, iters, gen):
            method.train_step(t, *data.train_batch(idx))
        method.end_task(t)


def set_params(method, flat):
    torch.nn.utils.vector_to_parameters(flat, method.net.parameters())


# -- penalty values on hand-made tensors ------------------------------------------------------
@pytest.mark.parametrize("name", METHOD_NAMES)
def test_penalty_is_the_formula_and_zero_at_the_anchor(name):
    m = build(name, **{f"{name}.{STRENGTH[name]}": 3.0}, **({"online_ewc.gamma": 0.5}
              if name == "online_ewc" else {}))  # fmt: skip
    g = torch.Generator().manual_seed(1)
    theta = flat_params(m.net).detach()
    P = theta.numel()
    imp, anchor = torch.rand(2, P, generator=g), theta + torch.randn(2, P, generator=g)
    assert m.penalty() is None  # nothing consolidated yet
    if name == "ewc":  # one term per task, each with its own anchor
        m.fisher, m.anchor = imp, anchor
        expected = 3.0 / 2 * (imp * (theta - anchor) ** 2).sum()
    else:
        if name == "online_ewc":
            m.fisher, m.anchor = imp[:1], anchor[:1]
            expected = 0.5 * 3.0 / 2 * (imp[0] * (theta - anchor[0]) ** 2).sum()
        else:  # SI and MAS: c · Σ Ω (θ − θ*)², no ½
            m.omega, m.anchor = imp[0], anchor[0]
            expected = 3.0 * (imp[0] * (theta - anchor[0]) ** 2).sum()
    assert m.penalty().item() == pytest.approx(expected.item(), rel=1e-5)
    set_params(m, m.anchor[0] if m.anchor.dim() == 2 else m.anchor)
    if name != "ewc":
        assert m.penalty().item() == 0.0
    else:  # zero only when θ equals every task's anchor
        m.fisher, m.anchor = imp[:1], m.anchor[:1]
        assert m.penalty().item() == 0.0


@pytest.mark.parametrize("name,gamma", [("ewc", None), ("online_ewc", 0.5)])
def test_ewc_keeps_one_term_per_task_online_ewc_one_running_term(name, gamma, monkeypatch):
    over = {"online_ewc.gamma": gamma} if gamma else {}
    m = build(name, **over)
    P = flat_params(m.net).numel()
    fishers = iter([torch.full((P,), 2.0), torch.full((P,), 3.0)])
    monkeypatch.setattr(hnet.methods.ewc, "sample_mean", lambda *a: next(fishers))
    thetas = []
    for t in range(2):
        m.begin_task(t)
        set_params(m, torch.full((P,), float(t + 1)))
        thetas.append(flat_params(m.net).detach())
        m.end_task(t)
    if name == "ewc":
        assert torch.equal(m.fisher[:, 0], torch.tensor([2.0, 3.0]))
        assert torch.equal(m.anchor, torch.stack(thetas))
    else:
        assert torch.equal(m.fisher, torch.full((1, P), 0.5 * 2.0 + 3.0))
        assert torch.equal(m.anchor, thetas[1][None])


# -- importance estimates against a per-sample loop -------------------------------------------
def loop_importance(m, task, per_sample):
    data = m.bench.tasks[task]
    total = torch.zeros_like(flat_params(m.net))
    for i in range(data.n_train):
        x, _ = data.train_batch(torch.tensor([i]))
        total += per_sample(m.logits(x, task, m.seen)[0])
    return total / data.n_train


def flat_grad_of(m, scalar):
    grads = torch.autograd.grad(scalar, list(m.net.parameters()), allow_unused=True,
                                retain_graph=True)  # fmt: skip
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                      for p, g in zip(m.net.parameters(), grads, strict=True)])  # fmt: skip


@pytest.mark.parametrize("scenario", ["cl1", "cl3"])
def test_fisher_is_the_expected_fisher_of_the_scenario_outputs(scenario):
    """F = mean_x Σ_c p(c|x) (∂ log p(c|x)/∂θ)², over the active outputs (all samples here)."""
    m = build("ewc", scenario, **{"train.iters": 30, "ewc.fisher_samples": 10_000})
    train(m, [0, 1], 30, torch.Generator().manual_seed(0))

    def fisher(out):
        logp = F.log_softmax(out, -1)
        return sum(logp[c].exp().detach() * flat_grad_of(m, logp[c]) ** 2 for c in range(len(out)))

    assert m.fisher.shape[0] == 2
    expected = loop_importance(m, 1, fisher)
    torch.testing.assert_close(m.fisher[1], expected, rtol=1e-4, atol=1e-9)
    if scenario == "cl1":  # only task 2's head (units 2, 3) enters task 2's Fisher
        head = expected[-(10 * 64 + 10) : -10].view(10, 64)
        assert head[2:4].abs().sum() > 0 and not head[:2].any() and not head[4:].any()


def test_mas_importance_is_mean_abs_gradient_of_squared_output_norm():
    m = build("mas", "cl3", **{"mas.samples": 10_000})
    train(m, [0], 30, torch.Generator().manual_seed(0))
    expected = loop_importance(m, 0, lambda out: flat_grad_of(m, out.pow(2).sum()).abs())
    torch.testing.assert_close(m.omega, expected, rtol=1e-4, atol=1e-9)


def test_si_path_integral_uses_the_task_loss_gradient_only():
    m = build("si", **{"si.c": 1e4})
    gen = torch.Generator().manual_seed(0)
    train(m, [0], 20, gen)
    m.begin_task(1)
    data = m.bench.tasks[1]
    m.train_step(1, *data.train_batch(torch.arange(32, 64)))  # leave θ*, so the penalty pulls
    x, y = data.train_batch(torch.arange(32))
    before = flat_params(m.net).detach()
    g_task = flat_grad_of(m, m.loss_on(x, y, 1))
    pen_grad = flat_grad_of(m, m.penalty())
    w_before = m.w.clone()
    m.train_step(1, x, y)
    delta = flat_params(m.net).detach() - before
    step = m.w - w_before
    torch.testing.assert_close(step, -g_task * delta, rtol=1e-5, atol=1e-10)
    # the penalty pulls hard, so counting its gradient in ω would be a clear difference
    assert (pen_grad * delta).abs().max() > 1e3 * (step + g_task * delta).abs().max()
    w, start, theta = m.w.clone(), m.start.clone(), flat_params(m.net).detach()
    omega0 = m.omega.clone()
    m.end_task(1)
    torch.testing.assert_close(m.omega, omega0 + w / ((theta - start) ** 2 + 0.1))
    assert torch.equal(m.anchor, theta) and not m.w.any()


# -- the penalty protects task 1 --------------------------------------------------------------
@pytest.fixture(scope="module")
def unprotected():
    torch.set_num_threads(1)
    return task1_after_task2("finetune", {})


def task1_after_task2(name, over):
    """Train tasks 1 and 2 (CL1, 100 steps each); task 1's test loss and accuracy after task 2,
    task 2's accuracy."""
    m = build(name, **{"train.iters": 100, **over})
    train(m, [0, 1], 100, torch.Generator().manual_seed(0))
    d = m.bench.tasks[0]
    with torch.no_grad():
        loss = m.loss_on(d.inputs(d.x_test), d.y_test, 0).item()
    return loss, m.evaluate(0)[0], m.evaluate(1)[0]


@pytest.mark.parametrize("name,strength", [("ewc", 1e4), ("online_ewc", 1e4), ("si", 100.0),
                                           ("mas", 1.0)])  # fmt: skip
def test_penalty_protects_the_first_task(name, strength, unprotected):
    loss, acc, acc_new = task1_after_task2(name, {f"{name}.{STRENGTH[name]}": strength})
    free_loss, free_acc, _ = unprotected
    assert loss < 0.3 * free_loss  # measured: ≈0.005-0.015 vs 0.12 without penalty
    assert acc >= free_acc and acc_new > 85.0  # protected, and task 2 is still learned


# -- configs ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bench,name,scenario,key,value,where",
    [
        ("split_digits", "ewc", "cl3", "lambda", 1e9, "splitMNIST, Class-IL"),
        ("split_digits", "online_ewc", "cl1", "lambda", 1e5, "splitMNIST, Task-IL"),
        ("split_digits", "ewc", "cl2", "lambda", 1e10, "splitMNIST, Domain-IL"),
        ("split_digits", "si", "cl2", "c", 5e4, "splitMNIST, Domain-IL"),
        ("permuted_digits", "si", "cl3", "c", 5.0, "permMNIST, Class-IL"),
        ("permuted_digits", "ewc", "cl1", "lambda", 100.0, "permMNIST, Task-IL"),
    ],
)
def test_tuned_values_and_their_source(bench, name, scenario, key, value, where):
    hp = config.resolve(bench, name, scenario=scenario)[name]
    assert hp[key] == value
    assert hp["source"] == f"van de Ven, Tuytelaars & Tolias 2022 ({where})"


@pytest.mark.parametrize(
    "name,key,value",
    [("ewc", "lambda", -1.0), ("online_ewc", "gamma", 1.5), ("si", "c", -1.0), ("si", "xi", 0.0),
     ("mas", "lambda", -0.1), ("ewc", "fisher_samples", 0), ("mas", "samples", 0)],
)  # fmt: skip
def test_bad_hyperparameters_name_the_key(name, key, value):
    with pytest.raises(ConfigError, match=rf"{name}\.{key}"):
        config.resolve("split_digits", name, overrides={f"{name}.{key}": value})


# -- checkpoints and jobs -----------------------------------------------------------------------
def steps(m, task, n, seed):
    data = m.bench.tasks[task]
    for idx in batches(data.n_train, 64, n, torch.Generator().manual_seed(seed)):
        m.train_step(task, *data.train_batch(idx))


@pytest.mark.parametrize("mid_task", [False, True], ids=["after_task2", "mid_task3"])
@pytest.mark.parametrize("name", METHOD_NAMES)
def test_restored_method_continues_identically(name, mid_task):
    """state_dict → torch.save → torch.load(weights_only=True) → a fresh method: same penalty,
    same parameters and the same importances after more training."""
    over = {f"{name}.{STRENGTH[name]}": 10.0}
    a = build(name, "cl3", **over)
    train(a, [0, 1], 15, torch.Generator().manual_seed(0))
    if mid_task:
        a.begin_task(2)
        steps(a, 2, 5, seed=4)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = build(name, "cl3", init_seed=1, **over)  # different initial weights
    b.load_state_dict(torch.load(buf, weights_only=True))
    assert a.penalty().item() == b.penalty().item()  # > 0 for EWC; at θ* for the others
    for m in (a, b):  # the same steps on task 3, then its consolidation
        if not mid_task:
            m.begin_task(2)
        steps(m, 2, 10, seed=5)
    assert torch.equal(flat_params(a.net), flat_params(b.net))
    assert a.penalty().item() == b.penalty().item() > 0
    a.end_task(2)
    b.end_task(2)
    for key, value in a.extra_state().items():
        assert torch.equal(value, b.extra_state()[key]), key


@pytest.mark.parametrize("name", METHOD_NAMES)
@pytest.mark.parametrize("scenario", ["cl1", "cl3"])
def test_run_job_writes_metrics(tmp_path, name, scenario):
    cfg = config.resolve("split_digits", name, scenario=scenario, overrides={"train.iters": 20})
    res = run_job(cfg, tmp_path / "run", progress=False)
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["method"] == name and len(on_disk["acc_matrix"]) == 5
    assert on_disk["acc_final"] == pytest.approx(res["acc_final"])


def test_cli_trains_ewc_class_incremental(tmp_path, capsys):
    args = ["train", "-b", "split_digits", "-m", "ewc", "--scenario", "cl3", "-q",
            "--out", str(tmp_path / "x"), "--set", "train.iters=20"]  # fmt: skip
    assert main(args) == 0
    assert "acc_final=" in capsys.readouterr().out
    cfg = json.loads((tmp_path / "x" / "config.json").read_text())
    assert cfg["ewc"]["lambda"] == 1e9
