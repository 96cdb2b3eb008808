"""hnet against the reference implementations, on tiny shapes with copied weights.

* The hypernetworks and the output regularizer against hypnettorch 0.0.4 (the authors' library,
  a dev dependency): ``HMLP``, ``ChunkedHMLP``, ``calc_fix_target_reg`` and the lookahead
  ``calc_delta_theta``.
* EWC, Online EWC, SI and MAS against their formulas (van de Ven's continual-learning code:
  ``models/cl/continual_learner.py``), computed here by hand with plain tensor arithmetic on a
  linear target net at parameter values where the softmax is uniform.

Mapping hypnettorch → hnet (the architectures are the same function; only layouts differ):

* layers: ``unconditional_params`` is ``[W0, b0, …, W_out, b_out]`` (+ the chunk embeddings
  last for ``ChunkedHMLP``), ``nn.Linear`` layout; hnet's output layer (``WideLinear``) stores
  ``W_out`` transposed;
* task embeddings: ``conditional_params[t]`` ↔ ``task_embs[t]``;
* ``ChunkedHMLP`` feeds ``[c_i, e_t]`` (chunk embedding first: it is its "unconditional input",
  ``HMLP.forward`` concatenates ``[uncond, cond]``); hnet, like the paper's code (hypercl
  ``toy_example/hyper_model.py``: ``torch.cat([task_emb, ext_inputs])``), feeds ``[e_t, c_i]``:
  the first layer's columns are swapped blockwise;
* both cut the last chunk's padding off the end (``hnet_out[:, :num_outputs]``).
"""

import copy

import pytest
import torch
from torch.testing import assert_close

from hnet.methods.common import lookahead
from hnet.methods.common.regularizer import OutputRegularizer
from hnet.models.hypernet import ChunkedHypernet, FullHypernet

pytest.importorskip(
    "hypnettorch", reason="hypnettorch==0.0.4 comes with the dev extra: pip install -e '.[dev]'"
)
from hypnettorch.hnets.chunked_mlp_hnet import ChunkedHMLP
from hypnettorch.hnets.mlp_hnet import HMLP
from hypnettorch.utils.hnet_regularizer import calc_fix_target_reg, get_current_targets
from hypnettorch.utils.optim_step import calc_delta_theta

SHAPES = [[3, 5], [3], [5]]  # a tiny target: 23 weights
NUMEL = 23
N_TASKS, TASK_EMB, CHUNK_EMB, CHUNK = 4, 3, 2, 5  # 5 chunks, the last one 3 long
ACTS = {"relu": torch.nn.ReLU, "elu": torch.nn.ELU}
# hypnettorch's Adam copy calls add_(Number, Tensor), deprecated in torch
pytestmark = pytest.mark.filterwarnings("ignore:This overload of add_ is deprecated")


# -- building both and copying hypnettorch's weights into hnet's ------------------------------
def pair(chunked, act="relu", hidden=(4, 6), seed=0):
    """A hypnettorch hypernetwork, and hnet's with the same weights (float64)."""
    torch.manual_seed(seed)
    common = dict(cond_in_size=TASK_EMB, layers=list(hidden), num_cond_embs=N_TASKS,
                  activation_fn=ACTS[act](), verbose=False)  # fmt: skip
    if chunked:
        ref = ChunkedHMLP(SHAPES, chunk_size=CHUNK, chunk_emb_size=CHUNK_EMB, **common)
        ours = ChunkedHypernet(NUMEL, N_TASKS, TASK_EMB, list(hidden), CHUNK, CHUNK_EMB, act)
    else:
        ref = HMLP(SHAPES, **common)
        ours = FullHypernet(NUMEL, N_TASKS, TASK_EMB, list(hidden), act)
    with torch.no_grad():  # hypnettorch's init draws biases too: make them nonzero
        for p in ref.unconditional_params:
            p.add_(0.1 * torch.randn_like(p))
    ref, ours = ref.double(), ours.double()
    with torch.no_grad():
        for name, value in as_theta(ref.unconditional_params, ours).items():
            ours.get_parameter(name).copy_(value)  # in place: WideLinear keeps [W; b] folded
        for mine, theirs in zip(ours.task_embs, ref.conditional_params, strict=True):
            mine.copy_(theirs)
    return ref, ours


def as_theta(uncond, hnet):
    """hypnettorch's list of unconditional tensors (parameters, or a ΔΘ of them) as hnet's Θ
    (by name, hnet's layout)."""
    uncond = list(uncond)
    out = {}
    if isinstance(hnet, ChunkedHypernet):
        out["chunk_embs"] = uncond.pop()  # ChunkedHMLP keeps its chunk embeddings last
    linears = [n for n, m in hnet.net.named_children() if hasattr(m, "weight")]
    assert len(uncond) == 2 * len(linears)
    for i, name in enumerate(linears):
        w, b = uncond[2 * i], uncond[2 * i + 1]
        if i == 0 and isinstance(hnet, ChunkedHypernet):  # [c, e] → [e, c]
            w = torch.cat([w[:, CHUNK_EMB:], w[:, :CHUNK_EMB]], dim=1)
        if i == len(linears) - 1:  # WideLinear: (in, out)
            w = w.T
        out[f"net.{name}.weight"], out[f"net.{name}.bias"] = w, b
    assert out.keys() == hnet.theta().keys()
    return out


def generated(ref):
    return ref.forward(cond_id=list(range(N_TASKS)), ret_format="flattened")


# -- (a) the hypernetworks ---------------------------------------------------------------------
@pytest.mark.parametrize("act", ["relu", "elu"])
@pytest.mark.parametrize("chunked", [False, True], ids=["HMLP", "ChunkedHMLP"])
def test_hypernetwork_generates_the_references_weights(chunked, act):
    ref, ours = pair(chunked, act)
    with torch.no_grad():
        expected = generated(ref)
        got = ours(ours.embeddings(range(N_TASKS)))
    assert expected.shape == got.shape == (N_TASKS, NUMEL)
    assert expected.std() > 0.1  # weights that differ between tasks and positions
    assert_close(got, expected, rtol=1e-12, atol=1e-12)
    if chunked:  # the padded output: the reference's chunks before its cut
        with torch.no_grad():
            padded = ours(ours.embeddings(range(N_TASKS)), padded=True)
        assert padded.shape == (N_TASKS, 25) and torch.equal(padded[:, :NUMEL], got)


# -- (b) the output regularizer and its lookahead ΔΘ -------------------------------------------
T = 3  # learning task 4: tasks 0, 1, 2 are regularized


def task_loss(weights, target):
    """Some loss of the current task's generated weights (any function of them serves)."""
    return (weights - target).pow(2).sum() + weights.sin().sum()


def train_both(ref, ours, ref_opt, our_opt, target, steps):
    """The same Adam steps on the task loss of embedding T for both; gradients in place after
    the last backward (no step after it)."""
    for i in range(steps + 1):
        ref_opt.zero_grad()
        our_opt.zero_grad()
        task_loss(ref.forward(cond_id=T, ret_format="flattened")[0], target).backward()
        task_loss(ours(ours.embeddings([T]))[0], target).backward()
        if i < steps:
            ref_opt.step()
            our_opt.step()


def adam_pair(ref, ours, fused):
    ref_opt = torch.optim.Adam(ref.unconditional_params, lr=0.01)
    our_opt = torch.optim.Adam(list(ours.theta().values()), lr=0.01, fused=fused)
    return ref_opt, our_opt


@pytest.mark.parametrize("fused", [False, True], ids=["foreach", "fused"])
@pytest.mark.parametrize("chunked", [False, True], ids=["HMLP", "ChunkedHMLP"])
def test_lookahead_is_the_references_delta_theta(chunked, fused):
    """ΔΘ from hnet's lookahead = hypnettorch's calc_delta_theta, after a few real Adam steps.

    hypnettorch copied PyTorch 1.0's Adam, which adds ε to √v before the bias correction:
    Δ = −lr·√(1−β2ᵗ)/(1−β1ᵗ) · m/(√v + ε). torch ≥ 1.3 (and hnet's lookahead, which must match
    the step the real optimizer then takes) adds it after: Δ = −lr/(1−β1ᵗ) · m/(√v/√(1−β2ᵗ) + ε).
    They are the same step for ε_ref = ε·√(1−β2ᵗ)."""
    ref, ours = pair(chunked, "elu")
    ref_opt, our_opt = adam_pair(ref, ours, fused)
    target = torch.randn(NUMEL, dtype=torch.float64)
    train_both(ref, ours, ref_opt, our_opt, target, steps=3)
    grads = {n: p.grad for n, p in ours.theta().items()}
    assert_close(grads, as_theta([p.grad for p in ref.unconditional_params], ours))
    delta = lookahead.adam(our_opt, ours.theta())({})
    # the step the real optimizer takes now
    real = copy.deepcopy(ours)
    real_opt = torch.optim.Adam(list(real.theta().values()), lr=0.01, fused=fused)
    real_opt.load_state_dict(our_opt.state_dict())
    for p, q in zip(real.theta().values(), ours.theta().values(), strict=True):
        p.grad = q.grad.clone()
    real_opt.step()
    stepped = {n: real.theta()[n] - p for n, p in ours.theta().items()}
    assert_close(delta, stepped, rtol=1e-9, atol=1e-15)
    # the reference's, with ε moved where torch ≥ 1.3 puts it
    eps, step = ref_opt.param_groups[0]["eps"], 4
    ref_opt.param_groups[0]["eps"] = eps * (1 - 0.999**step) ** 0.5
    theirs = as_theta(calc_delta_theta(ref_opt, use_sgd_change=False), ours)
    assert_close(delta, theirs, rtol=1e-9, atol=1e-15)
    assert min(d.abs().max() for d in delta.values()) > 1e-3  # a real step for every tensor


@pytest.mark.parametrize("with_lookahead", [False, True], ids=["at_theta", "lookahead"])
@pytest.mark.parametrize("mode,impl", [("stored", "direct"), ("stored", "gram"),
                                       ("online", "direct"), ("online", "gram")])  # fmt: skip
@pytest.mark.parametrize("chunked", [False, True], ids=["HMLP", "ChunkedHMLP"])
def test_regularizer_is_calc_fix_target_reg(chunked, mode, impl, with_lookahead):
    """R = 1/(T−1)·Σ_t ‖f(e_t, Θ*) − f(e_t, Θ + ΔΘ)‖² of hnet's OutputRegularizer equals
    hypnettorch's calc_fix_target_reg (which the authors' scripts multiply by β, as hnet
    does): the same sum of squares, the same mean over tasks, the same ΔΘ; its gradient too."""
    ref, ours = pair(chunked, "elu")
    reg = OutputRegularizer(mode, impl=impl)
    reg.begin_task(ours, T)  # Θ* (stored targets, or a snapshot)
    targets = get_current_targets(T, ref)
    prev_theta = [p.detach().clone() for p in ref.unconditional_params]
    prev_embs = [e.detach().clone() for e in ref.conditional_params]
    ref_opt, our_opt = adam_pair(ref, ours, fused=True)
    target = torch.randn(NUMEL, dtype=torch.float64)
    train_both(ref, ours, ref_opt, our_opt, target, steps=3)  # Θ moves away from Θ*
    if with_lookahead:
        ref_opt.param_groups[0]["eps"] *= (1 - 0.999**4) ** 0.5  # see the test above
        d_theta = calc_delta_theta(ref_opt, use_sgd_change=False)
        ahead = lookahead.adam(our_opt, ours.theta())
    else:
        d_theta, ahead = None, None
    if mode == "stored":
        expected = calc_fix_target_reg(ref, T, targets=targets, dTheta=d_theta)
    else:
        expected = calc_fix_target_reg(
            ref, T, dTheta=d_theta, prev_theta=prev_theta, prev_task_embs=prev_embs
        )
    got = reg.loss(ours, torch.arange(T), ahead)
    assert expected.item() > 1e-3  # the targets moved
    assert_close(got, expected, rtol=1e-9, atol=0)
    # the same gradient for Θ (task loss + regularizer: what the optimizer steps on)
    expected.backward()
    got.backward()
    grads = {n: p.grad for n, p in ours.theta().items()}
    assert_close(grads, as_theta([p.grad for p in ref.unconditional_params], ours), rtol=1e-9,
                 atol=1e-12)  # fmt: skip


# -- (c) EWC, Online EWC, SI and MAS against their formulas, by hand ----------------------------
def baseline(name, **over):
    """The method on split_digits CL1 with a linear target net: head.weight (10, 64) and
    head.bias (10), task t on units 2t, 2t + 1."""
    from hnet import config
    from hnet.data import load_benchmark
    from hnet.methods import METHODS

    over = {"target.hidden": [], **over}
    cfg = config.resolve("split_digits", name, scenario="cl1", seed=0, overrides=over)
    bench = load_benchmark("split_digits", cfg["data"], 0)
    torch.manual_seed(0)
    m = METHODS.get(name)(cfg, bench, torch.device("cpu"))
    assert [n for n, _ in m.net.named_parameters()] == ["head.weight", "head.bias"]
    return m


def put(m, weight, bias):
    with torch.no_grad():
        m.net.head.weight.copy_(weight)
        m.net.head.bias.copy_(bias)


def flat(weight, bias):
    return torch.cat([weight.reshape(-1), bias])


def bias_only(task, values):
    """W = 0 and the given bias on ``task``'s two units: p(c|x) = softmax(values) for all x."""
    b = torch.zeros(10)
    b[2 * task : 2 * task + 2] = torch.tensor(values)
    return torch.zeros(10, 64), b


def inputs(m, task):
    d = m.bench.tasks[task]
    return d.inputs(d.x_train)  # all training inputs (the estimates below use all of them)


def expected_fisher(m, task, values):
    """Expected Fisher at W = 0, b = bias_only(task, values), by hand: with z = W x + b,
    ∂ log p_c/∂W_kj = (δ_ck − p_k) x_j, so Σ_c p_c (∂ log p_c/∂W_kj)² = p_k (1 − p_k) x_j²,
    averaged over x; for b_k the same without x_j."""
    p = torch.softmax(torch.tensor(values), 0)
    fw, fb = torch.zeros(10, 64), torch.zeros(10)
    rows = slice(2 * task, 2 * task + 2)
    fw[rows] = (p * (1 - p))[:, None] * inputs(m, task).pow(2).mean(0)
    fb[rows] = p * (1 - p)
    return flat(fw, fb)


B0, B1 = [0.3, -0.9], [1.2, 0.1]  # the heads' biases at the end of tasks 1 and 2


def consolidate_two_tasks(m):
    """End tasks 1 and 2 (no training: the parameters are set), at bias_only(t, B_t)."""
    anchors = []
    for t, values in enumerate((B0, B1)):
        put(m, *bias_only(t, values))
        m.begin_task(t)
        anchors.append(flat(*bias_only(t, values)))
        m.end_task(t)
    return anchors


@pytest.mark.parametrize("name", ["ewc", "online_ewc"])
def test_ewc_penalties_are_their_formulas_by_hand(name):
    """EWC: λ/2 · Σ_t Σ_i F_t,i (θ_i − θ*_t,i)², one term per task (van de Ven's
    ``ewc_loss`` offline); Online EWC: λ/2 · Σ_i γ F_i (θ_i − θ*_i)² with F = γ F_1 + F_2 and
    θ* the latest solution (``ewc_loss`` online: ``fisher = self.gamma * fisher``)."""
    lam, gamma = 3.0, 0.7
    over = {f"{name}.lambda": lam, f"{name}.fisher_samples": 10_000}
    if name == "online_ewc":
        over[f"{name}.gamma"] = gamma
    m = baseline(name, **over)
    a0, a1 = consolidate_two_tasks(m)
    f0, f1 = expected_fisher(m, 0, B0), expected_fisher(m, 1, B1)
    theta = a1 + 0.1 * torch.randn(a1.shape, generator=torch.Generator().manual_seed(3))
    torch.nn.utils.vector_to_parameters(theta, m.net.parameters())
    if name == "ewc":
        expected = lam / 2 * ((f0 * (theta - a0) ** 2).sum() + (f1 * (theta - a1) ** 2).sum())
    else:
        expected = lam / 2 * (gamma * (gamma * f0 + f1) * (theta - a1) ** 2).sum()
    got = m.penalty()
    assert got.item() > 1e-3  # θ left θ*: never 0 (Avalanche once shipped an EWC penalty of 0)
    assert_close(got, expected, rtol=1e-5, atol=0)


def test_si_penalty_is_its_formula_by_hand():
    """SI (Zenke et al.; van de Ven's ``update_importance_estimates``/``update_omega``/
    ``surrogate_loss``): ω_i = −Σ_steps g_i Δθ_i, Ω_i = ω_i / ((θ_i − θ_i(start))² + ξ),
    penalty c · Σ_i Ω_i (θ_i − θ*_i)². Two real Adam steps on task 1, gradients by hand."""
    c, xi = 2.0, 0.1
    m = baseline("si", **{"si.c": c, "si.xi": xi})
    put(m, *bias_only(0, B0))
    m.begin_task(0)  # θ(start) = this
    start = flat(*bias_only(0, B0))
    d = m.bench.tasks[0]
    omega = torch.zeros_like(start)
    for idx in (torch.arange(0, 16), torch.arange(16, 40)):
        x, y = d.train_batch(idx)
        before = flat(m.net.head.weight.detach(), m.net.head.bias.detach())
        w, b = m.net.head.weight.detach()[:2], m.net.head.bias.detach()[:2]
        p = torch.softmax(x @ w.T + b, 1)  # task 1's head: units 0, 1
        err = (p - torch.nn.functional.one_hot(y, 2)) / len(y)  # ∂ mean CE / ∂z
        gw, gb = torch.zeros(10, 64), torch.zeros(10)
        gw[:2], gb[:2] = err.T @ x, err.sum(0)
        m.train_step(0, x, y)
        after = flat(m.net.head.weight.detach(), m.net.head.bias.detach())
        omega -= flat(gw, gb) * (after - before)
    end = after
    assert omega.max() > 1e-4
    m.end_task(0)
    big_omega = omega / ((end - start) ** 2 + xi)
    theta = end + 0.1 * torch.randn(end.shape, generator=torch.Generator().manual_seed(3))
    torch.nn.utils.vector_to_parameters(theta, m.net.parameters())
    got = m.penalty()
    assert got.item() > 1e-6
    assert_close(got, c * (big_omega * (theta - end) ** 2).sum(), rtol=1e-4, atol=0)


def test_mas_penalty_is_its_formula_by_hand():
    """MAS (Aljundi et al.): Ω_i = mean_x |∂‖f(x)‖²/∂θ_i|, summed over tasks, penalty
    λ · Σ_i Ω_i (θ_i − θ*_i)² with θ* the latest solution. At W = 0 the head's outputs are its
    bias b: ∂‖f‖²/∂W_kj = 2 b_k x_j, ∂‖f‖²/∂b_k = 2 b_k (inputs are ≥ 0)."""
    lam = 3.0
    m = baseline("mas", **{"mas.lambda": lam, "mas.samples": 10_000})
    a0, a1 = consolidate_two_tasks(m)
    omega = torch.zeros_like(a0)
    for t, values in enumerate((B0, B1)):
        ow, ob = torch.zeros(10, 64), torch.zeros(10)
        f = torch.tensor(values).abs()
        ow[2 * t : 2 * t + 2] = 2 * f[:, None] * inputs(m, t).mean(0)
        ob[2 * t : 2 * t + 2] = 2 * f
        omega += flat(ow, ob)
    theta = a1 + 0.1 * torch.randn(a1.shape, generator=torch.Generator().manual_seed(3))
    torch.nn.utils.vector_to_parameters(theta, m.net.parameters())
    got = m.penalty()
    assert got.item() > 1e-3
    assert_close(got, lam * (omega * (theta - a1) ** 2).sum(), rtol=1e-5, atol=0)
