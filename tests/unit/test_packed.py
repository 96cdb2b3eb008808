"""Packed seeds (hnet.job.packed): K seeds in one process are the K unpacked jobs, within the
tolerances that tests/packed_runs.py states and checks."""

from __future__ import annotations

import json
import signal

import pytest
import torch
from packed_runs import LOSS_TOL, assert_same_run, cfgs, check_packed_equals_unpacked, losses
from steps import at_second_task

from hnet.cli import build_parser
from hnet.cli.train import request_from_args
from hnet.errors import ConfigError, JobInterrupted
from hnet.job.loop import TrainingDiverged
from hnet.job.packed import run_packed
from hnet.job.request import parse_seeds
from hnet.job.run import run_job
from hnet.methods import METHODS
from hnet.methods.common import packed as packed_methods
from hnet.methods.common.lookahead import given
from hnet.methods.common.packed import PACKERS, refusal


@pytest.mark.parametrize(
    ("method", "scenario", "size", "iters", "over"),
    [
        ("hnet", "cl1", None, 30, {}),
        ("finetune", "cl3", None, 30, {}),
    ],  # the other cases: tests/integration/test_packed_matrix.py
)
def test_packed_seeds_equal_unpacked_jobs(tmp_path, method, scenario, size, iters, over):
    """Chunked and full hypernetworks, task-incremental and class-incremental, both
    regularizer terms, baselines."""
    check_packed_equals_unpacked(tmp_path, method, scenario, size, iters, over)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_packed_seeds_equal_unpacked_jobs_on_cuda(tmp_path):
    seeds = [0, 1]
    cs = cfgs("hnet", seeds, device="cuda")
    run_packed(cs, [tmp_path / f"p{s}" for s in seeds], progress=False)
    for cfg, s in zip(cs, seeds, strict=True):
        run_job(cfg, tmp_path / f"u{s}", progress=False)
        assert_same_run(tmp_path / f"p{s}", tmp_path / f"u{s}", "hnet")


def test_finished_seeds_are_skipped(tmp_path):
    outs = [tmp_path / f"seed{s}" for s in range(3)]
    first = run_packed(cfgs("finetune", [0, 1]), outs[:2], progress=False)
    again = run_packed(cfgs("finetune", [0, 1, 2]), outs, progress=False)
    assert again[:2] == [json.loads(json.dumps(r)) for r in first]  # reused as they were
    assert again[2]["seed"] == 2 and (outs[2] / "metrics.json").exists()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Seeds 0 and 1 of hnet, packed and uninterrupted."""
    root = tmp_path_factory.mktemp("ref")
    run_packed(cfgs("hnet", [0, 1]), [root / "seed0", root / "seed1"], progress=False)
    return root


def interrupt(outs, task=2, step=10):
    """A packed run of seeds 0 and 1 into ``outs``, stopped by SIGTERM at ``task``, ``step``."""

    def stop(kind, data):
        if kind == "loss" and (data["task"], data["step"]) == (task, step):
            signal.raise_signal(signal.SIGTERM)

    with pytest.raises(JobInterrupted):
        run_packed(cfgs("hnet", [0, 1]), outs, progress=False, on_event=[stop, None])


def test_interrupted_pack_resumes_exactly(tmp_path, reference):
    """SIGTERM in task 3: every seed is checkpointed at the same step; the same command resumes
    them; a seed may also be resumed alone, unpacked: the checkpoints are ordinary ones."""
    outs = [tmp_path / f"seed{s}" for s in (0, 1)]
    interrupt(outs)
    for out in outs:
        state = torch.load(out / "state" / "ckpt.pt", weights_only=True)
        assert (state["task"], state["step"]) == (2, 11)
        assert not (out / "metrics.json").exists()
    cs = cfgs("hnet", [0, 1])
    single = run_job(cs[1], outs[1], progress=False)  # seed 1 alone, unpacked
    res = run_packed(cs, outs, progress=False)  # seed 1 finished: seed 0 alone (plain job)
    assert res[1] == json.loads(json.dumps(single))
    for s, r in enumerate(res):  # resumed unpacked from packed checkpoints: equal up to float
        assert r["resumed"]  # reordering (on CPU, 1 thread: identical)
        assert_same_run(outs[s], reference / f"seed{s}", "hnet")


def test_seeds_at_different_points_resume_as_separate_packs(tmp_path, reference, capsys):
    """Seed 1's newest checkpoint is damaged: it goes back to the task boundary before, seed 0
    continues mid-task; both end as the uninterrupted run."""
    outs = [tmp_path / f"seed{s}" for s in (0, 1)]
    interrupt(outs)
    (outs[1] / "state" / "ckpt.pt").write_bytes(b"garbage")
    run_packed(cfgs("hnet", [0, 1]), outs, progress=False)
    err = capsys.readouterr().err
    assert "seed1 at task 3, step 0 from ckpt.prev.pt" in err
    assert "seed0 at task 3, step 11 from ckpt.pt" in err
    for s in (0, 1):
        assert_same_run(outs[s], reference / f"seed{s}", "hnet")


def test_a_diverging_seed_fails_alone(tmp_path, monkeypatch):
    """Seed 1's loss is infinite from step 4 of task 2 on (found at the next logged step, no
    sync per step): it fails alone, naming that step; seed 0 finishes."""
    real = packed_methods.PackedFinetune.train_step
    calls = []

    def inf_for_seed_1(self, task, x, y):
        out = real(self, task, x, y)
        calls.append(task)
        if task == 1 and calls.count(1) >= 4 and len(self.methods) == 2:
            out = out.clone()
            out[1] = float("inf")
        return out

    monkeypatch.setattr(packed_methods.PackedFinetune, "train_step", inf_for_seed_1)
    outs = [tmp_path / f"seed{s}" for s in (0, 1)]
    with pytest.raises(TrainingDiverged, match="the loss is inf at task 2, step 4 "):
        run_packed(cfgs("finetune", [0, 1]), outs, progress=False)
    assert (outs[0] / "metrics.json").exists() and not (outs[0] / "failed.json").exists()
    assert not (outs[1] / "metrics.json").exists()
    assert json.loads((outs[1] / "failed.json").read_text())["error"] == "TrainingDiverged"
    assert torch.load(outs[1] / "state" / "ckpt.pt", weights_only=True)["task"] == 1
    assert max(r["step"] for r in losses(outs[1]) if r["task"] == 1) == 0  # nothing logged after


@pytest.mark.parametrize("name", METHODS.names())
def test_packable_methods_have_a_packer(name):
    """A method that declares itself packable is packed by a trainer of its exact class (a
    subclass inherits ``packable`` and must say False unless it is packed too)."""
    cls = METHODS.get(name)
    assert cls.packable == (cls in PACKERS)


def test_refusals_name_the_reason():
    assert refusal(cfgs("hnet", [0])[0]) is None
    assert "not packable" in refusal(cfgs("ewc", [0])[0])
    assert "online" in refusal(cfgs("hnet", [0], **{"hnet.targets": "online"})[0])


def test_seeds_and_per_seed_arguments():
    assert parse_seeds("0-2,7") == (0, 1, 2, 7)
    with pytest.raises(ConfigError):
        parse_seeds("0,0")
    argv = [
        "train", "-b", "split_digits", "-m", "ewc", "--seeds", "0,1", "--out", "r/seed{seed}",
        "--set", "train.iters=3", "--threads", "1", "--size", "full", "--restart", "-q",
        "--tracking-file", "m.json", "--if-changed", "restart", "--scratch", "s/seed{seed}",
    ]  # fmt: skip
    request = request_from_args(build_parser().parse_args(argv))
    one = request.for_seed(1)  # what seed 1's own process is started with
    assert (one.seeds, one.seed_list, one.out, one.scratch) == ((1,), False, "r/seed1", "s/seed1")
    again = request_from_args(build_parser().parse_args(["train", *one.argv()]))
    assert again == one  # every field of the request is passed on
    assert request_from_args(build_parser().parse_args(["train", *request.argv()])) == request


@pytest.mark.parametrize("impl", ["direct", "gram"])
def test_the_stacked_regularizer_is_each_seeds_own(impl):
    """The regularizer on the stack (gram: its function over a seed axis; direct: vmapped)
    equals each seed's own, in value and in the gradient of every parameter, lookahead shift
    included."""
    methods = [at_second_task("hnet", seed, **{"hnet.reg_impl": impl})[0] for seed in (0, 1)]
    packed = packed_methods.pack(methods)
    assert (packed.gram is not None) == (impl == "gram")
    theta = packed.params["opt"]
    g = torch.Generator().manual_seed(0)
    delta = {n: 1e-3 * torch.randn(p.shape, generator=g) for n, p in theta.items()}
    reg = packed.regularizer(given(delta))
    reg.sum().backward()
    for s, m in enumerate(methods):
        m.hnet.zero_grad()
        own = m.reg.loss(m.hnet, None, given({n: d[s] for n, d in delta.items()}))
        own.backward()
        assert reg[s].item() == pytest.approx(own.item(), rel=1e-5) and own.item() > 0
        for n, p in m.hnet.theta().items():
            torch.testing.assert_close(theta[n].grad[s], p.grad, rtol=1e-4, atol=1e-7)


def test_a_change_to_hnets_loss_reaches_single_and_packed_seeds(tmp_path, monkeypatch):
    """``HNET.train_step`` is the one place HNET's loss is put together, for a single seed and
    for a pack (which passes itself as the step's ``on``): a different regularizer weighting,
    made there alone, changes a single-seed run and the packed run alike."""
    from hnet.methods.hnet import HNET

    seeds = [0, 1]
    cs = cfgs("hnet", seeds, **{"train.iters": 15})
    run_job(cs[0], tmp_path / "before", progress=False)
    monkeypatch.setattr(HNET, "regularizer_weight", lambda self, task: 50 * self.hp["beta"])
    run_job(cs[0], tmp_path / "single", progress=False)
    run_packed(cs, [tmp_path / f"p{s}" for s in seeds], progress=False)
    assert_same_run(tmp_path / "p0", tmp_path / "single", "hnet")  # both see the change

    def reg_losses(out):  # logged losses after task 1 include β · R
        return [r["loss"] for r in losses(out) if r["task"] > 0]

    before, after = reg_losses(tmp_path / "before"), reg_losses(tmp_path / "single")
    assert losses(tmp_path / "before")[0] == losses(tmp_path / "single")[0]  # task 1: no R
    assert max(abs(a - b) for a, b in zip(after, before, strict=True)) > 10 * LOSS_TOL
