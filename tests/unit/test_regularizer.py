"""The output regularizer: batched == per-task loop, target modes, lookahead, subsets, masks."""

import copy

import pytest
import torch

from hnet.fast.gram import GramState, OutputGram
from hnet.methods.common import lookahead
from hnet.methods.common.lookahead import adam_lookahead, given
from hnet.methods.common.regularizer import OutputRegularizer
from hnet.models.hypernet import ChunkedHypernet, FullHypernet


def make_hnet(chunked=True, n_tasks=6, numel=500):
    torch.manual_seed(0)
    if chunked:
        return ChunkedHypernet(
            numel, n_tasks, task_emb=8, hidden=[16, 16], chunk_size=64, chunk_emb=4
        )
    return FullHypernet(numel, n_tasks, task_emb=8, hidden=[16])


def perturb(h):
    with torch.no_grad():
        for p in h.theta().values():
            p.add_(0.05 * torch.randn_like(p))


def grads(h):
    return {n: p.grad.clone() for n, p in h.theta().items() if p.grad is not None}


def rel_err(a, b):
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


@pytest.mark.parametrize("chunked", [True, False])
@pytest.mark.parametrize("mode", ["stored", "online"])
@pytest.mark.parametrize("use_delta", [False, True])
@pytest.mark.parametrize("impl", ["direct", "gram", "masked"])
def test_batched_equals_loop_in_loss_and_gradients(chunked, mode, use_delta, impl):
    h = make_hnet(chunked)
    mask = (lambda t: torch.arange(h.target_numel) % (t + 2) != 0) if impl == "masked" else None
    reg = OutputRegularizer(mode, head_mask=mask, impl="direct" if mask else impl)
    reg.begin_task(h, 5)
    perturb(h)
    delta = {n: 0.01 * torch.randn_like(p) for n, p in h.theta().items()} if use_delta else None
    tasks = torch.tensor([0, 2, 3, 4])
    results = []
    for fn in (reg.loss, reg.loss_loop):
        h.zero_grad()
        loss = fn(h, tasks, given(delta) if use_delta else None)
        loss.backward()
        results.append((loss.detach(), grads(h)))
    (lb, gb), (ll, gl) = results
    assert lb.item() > 0
    assert rel_err(lb, ll) < 1e-5
    assert gb.keys() == gl.keys() and len(gb) == len(h.theta())
    for n in gb:
        assert rel_err(gb[n], gl[n]) < 1e-5, n


@pytest.mark.parametrize("impl", ["direct", "gram"])
def test_loss_is_zero_right_after_begin_task_and_sums_squares(impl):
    h = make_hnet()
    reg = OutputRegularizer("stored", impl=impl)
    reg.begin_task(h, 3)
    assert abs(reg.loss(h).item()) < 1e-9
    with torch.no_grad():
        h.net[-1].bias.add_(0.1)  # every generated weight moves by exactly 0.1
    # sum over all N weights of 0.1², averaged over the 3 regularized tasks
    assert reg.loss(h).item() == pytest.approx(h.target_numel * 0.01, rel=1e-4)


def test_stored_and_online_targets_agree():
    h = make_hnet()
    stored, online = OutputRegularizer("stored", impl="gram"), OutputRegularizer("online")
    stored.begin_task(h, 4)
    online.begin_task(h, 4)
    perturb(h)
    assert stored.loss(h).item() == pytest.approx(online.loss(h).item(), rel=1e-6)
    assert "features" in stored.state() and not online.use_gram  # auto: Gram not worth it here
    assert any(k.startswith("theta.") for k in online.state())


@pytest.mark.parametrize("impl", ["direct", "gram"])
def test_previous_embeddings_get_no_gradient(impl):
    h = make_hnet()
    reg = OutputRegularizer(impl=impl)
    reg.begin_task(h, 3)
    perturb(h)
    reg.loss(h).backward()
    assert all(h.task_embs[t].grad is None for t in range(6))


def test_random_subset_is_fresh_each_step_and_of_size_s():
    reg = OutputRegularizer(n_sample=3)
    reg.n_prev = 10
    g = torch.Generator().manual_seed(0)
    picks = [tuple(reg.select(g).tolist()) for _ in range(20)]
    assert all(len(p) == 3 == len(set(p)) and max(p) < 10 for p in picks)
    assert len(set(picks)) > 5
    reg.n_sample = 0
    assert reg.select(g).tolist() == list(range(10))


@pytest.mark.parametrize("fused", [False, True], ids=["foreach", "fused"])
def test_adam_lookahead_predicts_the_real_adam_step(fused):
    h = make_hnet()
    opt = torch.optim.Adam(h.theta().values(), lr=1e-2, fused=fused or None)
    for _step in range(3):  # with fresh and with accumulated moment estimates
        h.zero_grad()
        h(h.embeddings([0, 1])).pow(2).sum().backward()
        state_before = copy.deepcopy(opt.state_dict())
        before = {n: p.detach().clone() for n, p in h.theta().items()}
        delta = adam_lookahead(opt, h.theta())
        after = opt.state_dict()["state"]
        assert after.keys() == state_before["state"].keys()
        for k, st in after.items():  # the optimizer's moments and step are untouched
            for name, t in st.items():
                torch.testing.assert_close(t, state_before["state"][k][name], rtol=0, atol=0)
        opt.step()
        for n, p in h.theta().items():
            torch.testing.assert_close(p.detach() - before[n], delta[n], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("fused", [False, True], ids=["foreach", "fused"])
@pytest.mark.parametrize("strided", [False, True], ids=["contiguous", "strided"])
def test_adam_lookahead_adds_into_the_tensors_it_is_given(fused, strided):
    """``into``: ΔΘ of those parameters is added to the given tensors in place (the gram term's
    rows), bit for bit what adding the returned ΔΘ gives; the others come back as ΔΘ. A strided
    view (packed seeds' rows) cannot go through the fused kernel and is added afterwards."""
    h = make_hnet()
    opt = torch.optim.Adam(h.theta().values(), lr=1e-2, fused=fused or None)
    for step in range(3):  # the first call (no moments yet) and later ones
        h.zero_grad()
        h(h.embeddings([0, 1])).pow(2).sum().backward()
        if step:
            opt.step()
    theta = h.theta()
    name = next(n for n, p in theta.items() if p.dim() == 2)
    rows, cols = theta[name].shape
    into = torch.randn(cols, rows).T if strided else torch.randn(rows, cols)
    assert into.is_contiguous() != strided
    before = into.clone()
    delta = adam_lookahead(opt, theta)
    rest = adam_lookahead(opt, theta, into={name: into})
    assert rest.keys() == delta.keys() - {name}
    torch.testing.assert_close(into, before + delta[name], rtol=0, atol=0)
    for n, d in rest.items():
        torch.testing.assert_close(d, delta[n], rtol=0, atol=0)


def test_gram_with_the_adam_lookahead_equals_direct_with_its_delta():
    """The gram term takes ΔW and Δb in its own buffer: same loss and gradients as the direct
    term given the same ΔΘ as tensors."""
    h = make_hnet(numel=2000)
    opt = torch.optim.Adam(h.theta().values(), lr=1e-2, fused=True)
    regs = [OutputRegularizer("stored", impl=i) for i in ("direct", "gram")]
    for r in regs:
        r.begin_task(h, 4)
    for _ in range(2):
        h.zero_grad()
        h(h.embeddings([4])).pow(2).sum().backward()
        opt.step()
    h.zero_grad()
    h(h.embeddings([4])).pow(2).sum().backward()
    delta = adam_lookahead(opt, h.theta())
    results = []
    for reg, ahead in ((regs[0], given(delta)), (regs[1], lookahead.adam(opt, h.theta()))):
        saved = {n: p.grad.clone() for n, p in h.theta().items()}
        loss = reg.loss(h, None, ahead)
        loss.backward()
        results.append((loss.item(), {n: p.grad - saved[n] for n, p in h.theta().items()}))
        for n, p in h.theta().items():
            p.grad.copy_(saved[n])
    (direct, g_direct), (gram, g_gram) = results
    assert gram == pytest.approx(direct, rel=1e-5) and direct > 0
    for n in g_direct:
        assert rel_err(g_gram[n], g_direct[n]) < 1e-4, n


def test_gram_subset_of_tasks_matches_direct():
    h = make_hnet()
    regs = [OutputRegularizer("stored", impl=i) for i in ("direct", "gram")]
    for r in regs:
        r.begin_task(h, 5)
    perturb(h)
    tasks = torch.tensor([1, 3])
    direct, gram = (r.loss(h, tasks).item() for r in regs)
    assert gram == pytest.approx(direct, rel=1e-5)


def test_gram_stores_features_not_weights():
    h = make_hnet(numel=5000)
    reg = OutputRegularizer("stored", impl="gram")
    reg.begin_task(h, 5)
    stored = sum(t.numel() for t in reg.state().values())
    assert stored < 5 * 5000 / 2  # features (5 tasks × chunks × width) + one output layer


def test_auto_picks_gram_only_when_it_saves_work():
    h = ChunkedHypernet(2**20, 12, task_emb=4, hidden=[3], chunk_size=2**14, chunk_emb=2)
    reg = OutputRegularizer()
    reg.begin_task(h, 1)  # 1 task × 64 chunks of width 3: Gram is cheaper
    assert reg.use_gram
    reg.begin_task(make_hnet(numel=500), 1)  # 1 task × 8 chunks of width 16: direct
    assert not reg.use_gram
    sm = ChunkedHypernet(478_410, 5, task_emb=96, hidden=[10, 10], chunk_size=42000, chunk_emb=96)
    picks = []
    for task in range(1, 5):  # Split MNIST's official size: 12 chunks of width 10
        reg.begin_task(sm, task)
        picks.append(reg.use_gram)
    # Gram from the first previous task on: 12 chunks are more than the width (whole steps at
    # 1 previous task measured 5.56 / 5.43 ms with gram, 6.04 / 5.77 ms with direct).
    assert picks == [True, True, True, True]
    wide = ChunkedHypernet(2**20, 12, task_emb=4, hidden=[40], chunk_size=2**15, chunk_emb=2)
    reg.begin_task(wide, 1)  # 32 chunks of width 40: direct at 1 previous task, gram at 2
    assert not reg.use_gram
    reg.begin_task(wide, 2)
    assert reg.use_gram


@pytest.mark.parametrize("last", [7, 12], ids=["padded-last-chunk", "chunks-fit"])
@pytest.mark.parametrize("shifted", [False, True], ids=["plain", "lookahead"])
def test_output_gram_backward_is_the_derivative_of_its_forward(last, shifted):
    """The hand-written backward of the gram term against finite differences (float64), with
    and without the last chunk's padding and the lookahead shift."""
    g = torch.Generator().manual_seed(0)
    w, cs, e, c = 3, 12, 2, 4

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    frozen_w, frozen_b, h0 = rand(w, cs), rand(cs), rand(e, c, w)
    shift = (0.1 * rand(w, cs), 0.1 * rand(cs))
    inputs = [rand(*shape).requires_grad_() for shape in ((e, c, w), (w, cs), (cs,))]

    def loss(h, weight, bias):  # a fresh state per call: each step rewrites its buffer
        state = GramState(frozen_w, frozen_b, last)
        rows = state.write_shift(weight, bias)  # A' = [W*; W − W* + ΔW; b − b* + Δb]
        if shifted:
            for row, d in zip(rows, shift, strict=True):
                row.add_(d)
        return OutputGram.apply(h, weight, bias, h0, state)

    assert torch.autograd.gradcheck(loss, inputs)


def test_output_gram_refuses_a_backward_after_a_later_forward():
    """Its buffer is rewritten by every forward: a stale graph must fail, not give wrong
    gradients."""
    h = make_hnet()
    reg = OutputRegularizer("stored", impl="gram")
    reg.begin_task(h, 3)
    perturb(h)
    first = reg.loss(h)
    reg.loss(h)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        first.backward()
