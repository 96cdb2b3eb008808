"""The validation split (data.val_fraction): held out of training, class-stratified, seeded,
shared where the tasks share storage, scored after every task into metrics.json, checkpointed,
and absent (same run identity, same results) at the default 0."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hnet import config
from hnet.data import load_benchmark
from hnet.errors import ConfigError
from hnet.job.run import run_job

FAST = {"train.iters": 20, "train.batch_size": 32}
VAL_KEYS = {
    "val_acc_matrix",
    "val_acc_init",
    "val_acc_final",
    "val_acc_during",
    "val_bwt",
    "val_fwt",
    "val_forgetting",
}


def rows(x: torch.Tensor) -> set[bytes]:
    return {r.numpy().tobytes() for r in x}


def test_split_is_stratified_disjoint_and_seeded():
    full = load_benchmark("split_digits", {}, 0)
    a = load_benchmark("split_digits", {"val_fraction": 0.2}, 0)
    b = load_benchmark("split_digits", {"val_fraction": 0.2}, 0)
    c = load_benchmark("split_digits", {"val_fraction": 0.2}, 1)
    assert a.has_validation and not full.has_validation
    for t, (f, ta, tb) in enumerate(zip(full.tasks, a.tasks, b.tasks, strict=True)):
        assert ta.n_train + ta.x_val.shape[0] == f.n_train
        assert not rows(ta.x_val) & rows(ta.x_train)  # the digits hold no duplicate images
        assert rows(ta.x_val) | rows(ta.x_train) == rows(f.x_train)
        counts = torch.bincount(ta.y_val).tolist()
        expected = [round(0.2 * int((f.y_train == k).sum())) for k in range(2)]
        assert counts == expected, t  # per class: the same share
        assert torch.equal(ta.x_val, tb.x_val)  # same seed, same split
        assert torch.equal(ta.x_test, f.x_test)  # the test set is untouched
    assert not all(torch.equal(x.x_val, y.x_val) for x, y in zip(a.tasks, c.tasks, strict=True))


def test_permuted_tasks_keep_sharing_one_copy_and_regression_splits_too():
    p = load_benchmark("permuted_digits", {"val_fraction": 0.1}, 3)
    assert all(t.x_train is p.tasks[0].x_train for t in p.tasks)
    assert all(t.x_val is p.tasks[0].x_val for t in p.tasks)
    assert p.tasks[1].perm is not None
    toy = load_benchmark("toy_regression", {"val_fraction": 0.25}, 0)
    assert [(t.n_train, t.x_val.shape[0]) for t in toy.tasks] == [(15, 5)] * 3


def test_zero_is_no_split_and_bad_fractions_are_config_errors():
    bench = load_benchmark("split_digits", {"val_fraction": 0.0}, 0)
    assert not bench.has_validation
    for bad in (1.0, -0.1):
        with pytest.raises(ConfigError, match=r"data.val_fraction must be in \[0, 1\)"):
            config.resolve("split_digits", "ewc", overrides={"data.val_fraction": bad})
    with pytest.raises(ConfigError, match="holds out no training example of task 1"):
        load_benchmark("toy_regression", {"val_fraction": 0.01}, 0)


def test_default_keeps_the_run_identity_of_results_made_before_the_key():
    cfg = config.resolve("split_digits", "hnet", overrides=FAST)
    assert cfg["data"]["val_fraction"] == 0.0
    assert "val_fraction" not in config.identity_config(cfg)["data"]
    held = config.resolve("split_digits", "hnet", overrides={**FAST, "data.val_fraction": 0.2})
    assert config.identity_config(held)["data"]["val_fraction"] == 0.2
    assert config.run_key(held) != config.run_key(cfg)


def test_job_scores_the_validation_split_after_every_task(tmp_path):
    torch.set_num_threads(1)
    cfg = config.resolve(
        "split_digits", "ewc", seed=2, overrides={**FAST, "data.val_fraction": 0.2}, device="cpu"
    )
    res = run_job(cfg, tmp_path / "val", progress=False)
    assert set(res) >= VAL_KEYS
    V = np.array(res["val_acc_matrix"])
    assert V.shape == (5, 5) and np.isfinite(V).all()
    assert res["val_acc_final"] == pytest.approx(V[-1].mean())
    assert res["val_acc_during"] == pytest.approx(np.diag(V).mean())
    assert len(res["val_acc_init"]) == 5
    plain = run_job(
        config.resolve("split_digits", "ewc", seed=2, overrides=FAST, device="cpu"),
        tmp_path / "plain",
        progress=False,
    )
    assert not VAL_KEYS & set(plain)


def test_validation_scores_survive_a_resume(tmp_path, monkeypatch):
    """A job stopped after task 2 resumes with its validation rows (checkpointed) and ends
    with the matrices of an uninterrupted run."""
    from hnet.methods.ewc import EWC

    torch.set_num_threads(1)
    cfg = config.resolve(
        "split_digits", "ewc", seed=5, overrides={**FAST, "data.val_fraction": 0.2}, device="cpu"
    )
    ref = run_job(cfg, tmp_path / "ref", progress=False)
    real_step = EWC.train_step

    def crash(self, task, x, y):
        if task == 2:
            raise RuntimeError("stop")
        return real_step(self, task, x, y)

    monkeypatch.setattr(EWC, "train_step", crash)
    with pytest.raises(RuntimeError):
        run_job(cfg, tmp_path / "cut", progress=False)
    monkeypatch.setattr(EWC, "train_step", real_step)
    res = run_job(cfg, tmp_path / "cut", progress=False)
    assert res["resumed"]
    assert res["val_acc_matrix"] == ref["val_acc_matrix"]
    assert res["acc_matrix"] == ref["acc_matrix"]
