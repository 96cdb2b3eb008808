"""Fidelity to the authors' code (docs/fidelity.md): each test asserts the reference's
behaviour as the default, and that the config key switching to the other behaviour works.
Every test fails when its fix is reverted."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F
from steps import build
from steps import train as run_tasks

from hnet import config
from hnet.methods.common.distill import distill_loss

CPU = torch.device("cpu")


def make(method, scenario="cl1", benchmark="split_digits", seed=0, **over):
    return build(method, scenario, benchmark, seed, **over)


def train(m, tasks, iters):
    run_tasks(m, tasks, iters, evaluate=False)


def adam_steps(opt: torch.optim.Optimizer) -> set[float]:
    return {float(st["step"]) for st in opt.state.values()}


# -- 1. a fresh Adam for Θ per task ------------------------------------------------------------


@pytest.mark.parametrize("method", ["hnet", "hnet_tir"])
def test_theta_gets_a_fresh_adam_at_every_task(method):
    """hypercl mnist/train_splitMNIST.py train_class_one_t and cifar/train.py train build
    Θ's Adam inside the per-task function; reset_optimizer=false carries one over."""
    scenario = "cl1" if method == "hnet" else "cl2"
    m = make(method, scenario, **{"train.batch_size": 16})
    assert m.hp["reset_optimizer"] is True
    train(m, [0], 3)
    before = m.opt
    m.begin_task(1)
    assert m.opt is not before and not m.opt.state  # no moments, step 0
    m.train_step(1, *m.bench.tasks[1].train_batch(torch.arange(16)))
    assert adam_steps(m.opt) == {1.0}

    kept = make(method, scenario, **{"train.batch_size": 16, f"{method}.reset_optimizer": False})
    train(kept, [0], 3)
    before = kept.opt
    kept.begin_task(1)
    assert kept.opt is before and adam_steps(kept.opt) == {3.0}
    with pytest.raises(config.ConfigError, match=rf"{method}\.reset_optimizer"):
        make(method, scenario, **{f"{method}.reset_optimizer": "yes"})


@pytest.mark.parametrize("reset", [True, False])
def test_a_resumed_hnet_continues_exactly_across_the_next_task_start(reset):
    """Saved mid-task 2 (weights_only load) and restored into a fresh method: the rest of task
    2 and task 3, which begins with a fresh Adam (or the carried one), are bit-identical."""
    over = {"train.batch_size": 16, "hnet.reset_optimizer": reset}
    m = make("hnet", **over)
    train(m, [0], 4)
    m.begin_task(1)
    batches = {
        t: [m.bench.tasks[t].train_batch(torch.arange(i, i + 16)) for i in range(5)] for t in (1, 2)
    }
    for x, y in batches[1][:2]:
        m.train_step(1, x, y)
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    buf.seek(0)
    other = make("hnet", **over)
    other.load_state_dict(torch.load(buf, weights_only=True))
    for a in (m, other):
        losses = [a.train_step(1, x, y) for x, y in batches[1][2:]]
        a.end_task(1)
        a.begin_task(2)
        losses += [a.train_step(2, x, y) for x, y in batches[2]]
        a.losses = torch.stack(losses)
    assert torch.equal(m.losses, other.losses)
    for (name, p), q in zip(m.hnet.named_parameters(), other.hnet.parameters(), strict=True):
        assert torch.equal(p, q), name


def test_reset_optimizer_shows_its_source():
    _, sources = config.resolve_with_sources("split_digits", "hnet", "cl1")
    assert sources["hnet.reset_optimizer"] == "hnet default"


# -- 6. the learning-rate schedule scales every optimizer --------------------------------------


@pytest.mark.parametrize(("method", "scenario"), [("hnet_r", "cl3"), ("hnet_tir", "cl3")])
def test_scale_lr_scales_replay_model_and_task_inference_optimizers(method, scenario):
    """Each optimizer goes to its own configured rate times the factor: rp_lr for the replay
    model, train.lr for the classifier and the task-inference network."""
    over = {"train.lr": 0.002, f"{method}.rp_lr": 0.0005, "train.batch_size": 16}
    m = make(method, scenario, **over)
    train(m, [0], 2)
    m.begin_task(1)
    m.scale_lr(0.1)
    opts = {f"rm.{name}": opt for name, opt in m.rm.opts.items()}
    opts["classifier"] = m.opt
    if method == "hnet_tir":
        opts.update(embedding=m.emb_opt, inference=m.infer_opt)
    rates = {k: [g["lr"] for g in o.param_groups] for k, o in opts.items()}
    want = {k: [pytest.approx(5e-5 if k.startswith("rm.") else 2e-4)] for k in opts}
    assert rates == want
    m.scale_lr(1.0)
    assert [g["lr"] for g in m.rm.opts["theta"].param_groups] == [pytest.approx(5e-4)]


def test_scale_lr_scales_the_dgr_generator():
    """DGR+distill's generator trains at train.lr like its classifier: the schedule scales both
    (van de Ven's code gives every optimizer of a run the same schedule)."""
    m = make("dgr_distill", "cl3", **{"train.lr": 0.002})
    m.scale_lr(0.1)
    assert [g["lr"] for g in m.gen_opt.param_groups] == [pytest.approx(2e-4)]
    assert [g["lr"] for g in m.opt.param_groups] == [pytest.approx(2e-4)]


# -- 2. HNET+R in CL3 pads the teacher's logits with 0 -----------------------------------------


def test_distillation_pads_logits_or_probabilities():
    g = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(5, 6, generator=g), torch.randn(5, 4, generator=g)
    T = 2.0
    logq = F.log_softmax(student / T, -1)
    padded = torch.cat([teacher, torch.zeros(5, 2)], -1)  # hypercl: zeros[:, :t*od] = logits
    want = -(F.softmax(padded / T, -1) * logq).sum(-1).mean() * T**2
    torch.testing.assert_close(distill_loss(student, teacher, T, "logits"), want)
    p = F.softmax(teacher / T, -1)  # van de Ven's loss_fn_kd: probabilities padded with 0
    want = -(p * logq[:, :4]).sum(-1).mean() * T**2
    torch.testing.assert_close(distill_loss(student, teacher, T, "probabilities"), want)
    torch.testing.assert_close(distill_loss(student, teacher, T), want)  # DGR+distill's


@pytest.mark.parametrize("t_squared", [None, True])
def test_dgr_distill_replay_term_is_van_de_vens_loss_fn_kd_without_t_squared(t_squared):
    """van de Ven's train_a_batch calls loss_fn_kd with norm=False: no T² factor. DGR+distill's
    replay term equals that hand-computed loss by default, and 4× it (T = 2) with t_squared."""
    over = {"train.batch_size": 16} | ({"dgr_distill.t_squared": t_squared} if t_squared else {})
    m = make("dgr_distill", "cl3", **over)
    m.begin_task(1)
    xr = m.replay_batch()
    got = m.replay_loss(1, xr)
    T, hs = m.hp["temperature"], m.bench.head_size
    with torch.no_grad():
        teacher = F.softmax(m.prev_net(xr)[:, :hs] / T, -1)
    logq = F.log_softmax(m.net(xr)[:, : 2 * hs] / T, -1)[:, :hs]  # zero targets for new classes
    want = -(teacher * logq).sum(-1).mean() * (T**2 if t_squared else 1.0)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("pad", [None, "probabilities"])
def test_hnet_r_cl3_replay_targets_are_the_teachers_logits_padded_with_zero(pad):
    over = {"train.batch_size": 16} | ({"hnet_r.pad_targets": pad} if pad else {})
    m = make("hnet_r", "cl3", **over)
    assert m.hp["pad_targets"] == (pad or "logits")
    train(m, [0, 1], 5)
    m.begin_task(2)
    state = m.rm.gen.get_state()
    got = m.replay_loss(2)
    m.rm.gen.set_state(state)
    x, _ = m.rm.replay(2)
    hs, T = m.bench.head_size, m.hp["temperature"]
    with torch.no_grad():
        teacher = m.teacher(x)[:, : 2 * hs]
    logq = F.log_softmax(m.net(x)[:, : 3 * hs] / T, -1)
    if pad is None:
        target = F.softmax(F.pad(teacher, (0, hs)) / T, -1)
    else:
        target = F.pad(F.softmax(teacher / T, -1), (0, hs))
    torch.testing.assert_close(got, -(target * logq).sum(-1).mean() * T**2)
    with pytest.raises(config.ConfigError, match=r"hnet_r\.pad_targets"):
        make("hnet_r", "cl3", **{"hnet_r.pad_targets": "zeros"})


# -- 3. Xavier-uniform weights and zero biases for the networks with weights of their own ------


def linear_layers(m):
    nets = {"encoder": m.rm.vae.encoder}
    nets["classifier" if m.name == "hnet_r" else "inference"] = (
        m.net if m.name == "hnet_r" else m.infer_net
    )
    return {
        f"{k}.{name}": layer
        for k, net in nets.items()
        for name, layer in net.named_modules()
        if isinstance(layer, torch.nn.Linear)
    }


@pytest.mark.parametrize(("method", "scenario"), [("hnet_r", "cl3"), ("hnet_tir", "cl2")])
def test_replay_family_networks_start_xavier_uniform_with_zero_biases(method, scenario):
    """hypercl mnist/train_utils.py generate_classifier and mnist/replay/train_utils_replay.py
    generate_replay_networks: xavier_uniform_ for every matrix, constant 0 for every bias."""
    m = make(method, scenario)
    assert m.hp["init"] == "xavier"
    layers = linear_layers(m)
    assert len(layers) >= 4
    for name, layer in layers.items():
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert not layer.bias.any(), name
        w = layer.weight.abs()
        assert w.max() <= bound and w.max() > 0.9 * bound, name  # torch's bound is 1/√fan_in
    torch_init = linear_layers(make(method, scenario, **{f"{method}.init": "torch"}))
    assert all(layer.bias.any() for layer in torch_init.values())
    with pytest.raises(config.ConfigError, match=rf"{method}\.init"):
        make(method, scenario, **{f"{method}.init": "kaiming"})


# -- 4. PM-100 in CL2 regularizes 20 random earlier tasks per step -----------------------------


def test_pm100_cl2_regularizes_20_random_earlier_tasks_with_its_own_source():
    """hypercl mnist/train_args_default.py _set_default_permuted: num_tasks >= 100,
    infer_task_id (HNET+TIR and HNET+ENT) and cl_scenario == 2 → hnet_reg_batch_size = 20."""
    for method, scenarios in (("hnet", ("cl1", "cl2", "cl3")), ("hnet_tir", ("cl2", "cl3"))):
        for sc in scenarios:
            cfg, sources = config.resolve_with_sources("permuted_mnist_100", method, sc)
            assert cfg[method]["reg_tasks"] == (20 if sc == "cl2" else 0), (method, sc)
            if sc == "cl2":  # each value names the entry it came from
                assert "PM-100 CL2" in sources[f"{method}.reg_tasks"]
                assert "PM-100 CL2" not in sources[f"{method}.beta"]
                assert sources[f"{method}.beta"].startswith("tuned: von Oswald")
    assert config.resolve("permuted_mnist", "hnet", "cl2")["hnet"]["reg_tasks"] == 0


# -- 5. the decoder hypernetwork holds T − 1 task embeddings -----------------------------------


def test_decoder_hypernetwork_has_one_embedding_per_replayed_task():
    """hypercl mnist/replay/train_utils_replay.py generate_replay_networks: num_embeddings =
    num_tasks − 1 (the last task is never replayed); its compression ratio counts those."""
    from types import SimpleNamespace

    from hnet.methods.common.replay_model import ReplayModel

    cfg = config.resolve("split_mnist", "hnet_r", "cl3")  # the official Split MNIST decoder
    bench = SimpleNamespace(name="split_mnist", n_tasks=5, in_dim=784)
    rm = ReplayModel(cfg["hnet_r"], cfg, bench, CPU)
    assert len(rm.vae.hnet.task_embs) == 4
    # the authors' count: chunked HMLP [96 + 96, 10, 10, 50000], 9 chunk embeddings of 96, four
    # task embeddings of 96, for the decoder [100 + 100, 250, 350, 784]
    dec = 200 * 250 + 250 + 250 * 350 + 350 + 350 * 784 + 784
    mlp = 192 * 10 + 10 + 10 * 10 + 10 + 10 * 50000 + 50000
    hnet = mlp + math.ceil(dec / 50000) * 96 + 4 * 96
    counts = rm.param_counts()
    assert (counts["n_params_decoder"], counts["n_params_decoder_hnet"]) == (dec, hnet)
    assert counts["decoder_compression_ratio"] == pytest.approx(hnet / dec)


@pytest.mark.parametrize("method", ["hnet_r", "hnet_tir"])
def test_all_tasks_train_and_old_checkpoints_with_t_embeddings_load(method):
    m = make(method, "cl3", **{"train.batch_size": 16})
    n = m.bench.n_tasks
    assert len(m.rm.vae.hnet.task_embs) == n - 1
    train(m, range(n), 2)
    assert m.sample_grid()["images"].shape[0] == n - 1
    state = m.state_dict()
    rm = (state["extra"] if method == "hnet_r" else state)["replay_model"]
    rm["vae"] = dict(rm["vae"])
    rm["vae"][f"hnet.task_embs.{n - 1}"] = torch.zeros_like(rm["vae"]["hnet.task_embs.0"])
    other = make(method, "cl3", **{"train.batch_size": 16})
    other.load_state_dict(state)
    for p, q in zip(m.rm.vae.parameters(), other.rm.vae.parameters(), strict=True):
        assert torch.equal(p, q)


def test_the_job_schedule_reaches_the_replay_model_and_the_inference_network(tmp_path, monkeypatch):
    """train.lr_schedule through the job loop: the rates each optimizer had at the last step of
    every task (the replay model's at its rp_lr, the others at train.lr)."""
    from hnet.job.run import run_job
    from hnet.methods.hnet_tir import HNETTIR

    seen = []

    def end_task(self, task):
        seen.append(
            {
                "theta": self.opt.param_groups[0]["lr"],
                "infer": None if self.infer_opt is None else self.infer_opt.param_groups[0]["lr"],
                "rm": None if self.rm.opts is None else self.rm.opts["theta"].param_groups[0]["lr"],
            }
        )

    monkeypatch.setattr(HNETTIR, "end_task", end_task)
    over = {"train.iters": 12, "train.batch_size": 8, "train.lr_schedule": "resnet_cifar"}
    over |= {"train.lr": 0.002, "hnet_tir.rp_lr": 0.0005}
    cfg = config.resolve("split_digits", "hnet_tir", "cl2", overrides=over, threads=1)
    run_job(cfg, tmp_path / "run", progress=False)
    f = 0.0005  # the last step is past 90.5 % of the task
    assert seen[0] == {
        "theta": pytest.approx(0.002 * f),
        "infer": None,
        "rm": pytest.approx(5e-4 * f),
    }
    assert seen[1] == {
        "theta": pytest.approx(0.002 * f),
        "infer": pytest.approx(0.002 * f),
        "rm": pytest.approx(5e-4 * f),
    }
    assert seen[-1]["rm"] is None  # the VAE does not learn the last task
