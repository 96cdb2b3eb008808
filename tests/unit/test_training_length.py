"""How long and how fast a task trains: ``train.epochs`` (steps per task from the declared task
sizes), ``train.lr_schedule``, one monotone MLflow step axis, and keys added later that leave
the identity of existing runs alone."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import pytest
import torch

from hnet import config
from hnet.config import NEUTRAL_KEYS, identity_config, run_key
from hnet.data import BENCHMARKS, load_benchmark
from hnet.errors import ConfigError
from hnet.job.run import run_job
from hnet.methods.common.schedule import lr_factor
from hnet.steps import global_step, task_iters


def test_epochs_become_steps_per_task_from_the_declared_sizes():
    cfg = config.resolve("split_cifar10_100", "hnet")
    # 200 epochs of batch 32: 1563 steps per CIFAR-10 epoch, 157 per 5 000-image CIFAR-100 task
    assert cfg["train"]["iters_per_task"] == [312_600] + [31_400] * 5
    zenke = config.resolve("split_cifar10_100_zenke", "hnet")
    assert zenke["train"]["iters_per_task"] == [15_680] + [1_600] * 5  # 80 epochs of 256
    assert sum(zenke["train"]["iters_per_task"]) == 23_680  # "about 24k iterations per run"
    fm = config.resolve("split_fmnist", "finetune", overrides={"train.epochs": 2})
    assert fm["train"]["iters_per_task"] == [2 * math.ceil(12_000 / 128)] * 5
    mnist = config.resolve("split_mnist", "finetune", overrides={"train.epochs": 1})
    assert mnist["train"]["iters_per_task"][0] == math.ceil((5923 + 6742) / 128)
    c10 = config.resolve("split_cifar10", "hnet", overrides={"data.classes_per_task": 5})
    assert c10["train"]["iters_per_task"] == [200 * math.ceil(25_000 / 32)] * 2
    plain = config.resolve("split_cifar10_100", "hnet", overrides={"train.epochs": 0})
    assert plain["train"]["iters_per_task"] is None
    assert task_iters(plain, 6) == [plain["train"]["iters"]] * 6
    assert config.resolve("split_digits", "hnet")["train"]["iters_per_task"] is None


def test_derived_steps_are_shown_with_their_source_and_cannot_be_set():
    cfg, sources = config.resolve_with_sources("split_cifar10_100_zenke", "finetune")
    text = config.format_with_sources(cfg, sources)
    assert "iters_per_task: [15680, 1600, 1600, 1600, 1600, 1600]" in text
    assert sources["train.iters_per_task"].startswith("derived")
    with pytest.raises(ConfigError, match=r"derived .* set train\.epochs"):
        config.resolve("split_cifar10_100", "hnet", overrides={"train.iters_per_task": [1] * 6})
    with pytest.raises(ConfigError, match="does not declare its task sizes"):
        config.resolve("split_digits", "hnet", overrides={"train.epochs": 3})
    with pytest.raises(ConfigError, match=r"train\.epochs must be an integer"):
        config.resolve("split_cifar10_100", "hnet", overrides={"train.epochs": -1})
    with pytest.raises(ConfigError, match="lr_schedule must be one of none, resnet_cifar"):
        config.resolve("split_digits", "hnet", overrides={"train.lr_schedule": "cosine"})
    with pytest.raises(ConfigError, match=r"bn_per_task.*cl1 only"):
        config.resolve("split_cifar10", "finetune", "cl3", overrides={"train.bn_per_task": True})


def test_keys_added_later_leave_existing_runs_the_same_runs():
    """A config.json written before train.epochs & co. existed has the identity (and MLflow run
    key) of today's config of the same job, so studies are not retrained because keys grew."""
    cfg = config.resolve("split_mnist", "hnet", "cl3")
    old = copy.deepcopy(cfg)
    for dotted in NEUTRAL_KEYS:
        section, key = dotted.split(".")
        old[section].pop(key)
    assert identity_config(old) == identity_config(cfg)
    assert run_key(old) == run_key(cfg)
    changed = config.resolve("split_mnist", "hnet", "cl3", overrides={"train.epochs": 1})
    assert run_key(changed) != run_key(cfg)
    assert identity_config(changed)["train"]["iters_per_task"] == [99, 95, 88, 96, 93]


def test_resnet_cifar_schedule_drops_when_the_official_epochs_begin():
    # the authors' factor of epoch e is the last milestone's with e > 80, 120, 160, 180
    steps_per_epoch, total = 7, 1400
    factors = {e: lr_factor("resnet_cifar", e * steps_per_epoch, total) for e in range(200)}
    assert {e for e, f in factors.items() if f == 1.0} == set(range(81))
    assert factors[81] == factors[120] == 0.1
    assert factors[121] == factors[160] == 0.01
    assert factors[161] == factors[180] == 0.001
    assert factors[181] == factors[199] == 0.0005
    assert lr_factor("none", 10**6, 10) == 1.0


def test_one_monotone_step_axis_over_tasks_of_different_lengths():
    cfg = {"train": {"iters": 100, "iters_per_task": [5, 2, 3]}}
    steps = [global_step(cfg, t, s) for t, n in enumerate([5, 2, 3]) for s in range(n)]
    assert steps == list(range(10))
    old = {"train": {"iters": 4}}  # a config.json from before iters_per_task
    assert global_step(old, 2, 1) == 9


@pytest.fixture
def digits_with_sizes(monkeypatch):
    """split_digits with declared task sizes (the real ones), so train.epochs works on it."""
    bench = load_benchmark("split_digits", {}, 0)
    sizes = [t.n_train for t in bench.tasks]
    spec = dataclasses.replace(BENCHMARKS.get("split_digits"), task_sizes=lambda cfg: sizes)
    monkeypatch.setitem(BENCHMARKS._items, "split_digits", spec)
    return sizes


@pytest.mark.parametrize("method", ["hnet", "finetune"])
def test_the_job_trains_each_task_for_its_own_steps_on_the_schedule(
    tmp_path, digits_with_sizes, method
):
    over = {"train.epochs": 2, "train.batch_size": 8, "train.log_every": 1}
    over["train.lr_schedule"] = "resnet_cifar"
    cfg = config.resolve("split_digits", method, overrides=over, threads=1)
    expected = [2 * math.ceil(n / 8) for n in digits_with_sizes]
    assert cfg["train"]["iters_per_task"] == expected
    assert len(set(expected)) > 1  # the digits tasks differ in size
    run_job(cfg, tmp_path / "run", progress=False)
    logged = [json.loads(x) for x in (tmp_path / "run" / "losses.jsonl").read_text().splitlines()]
    per_task = [sum(r["task"] == t for r in logged) for t in range(len(expected))]
    assert per_task == expected
    state = torch.load(tmp_path / "run" / "state" / "ckpt.pt", weights_only=True)
    lr = state["method"]["opt"]["param_groups"][0]["lr"]
    assert lr == pytest.approx(cfg["train"]["lr"] * 0.0005)  # the last step is past 90.5 %
    if method == "hnet":
        emb_lr = state["method"]["emb_opt"]["param_groups"][0]["lr"]
        assert emb_lr == pytest.approx(cfg["train"]["lr"] * 0.0005)


def test_epochs_refuse_data_of_other_sizes(tmp_path, tiny_data_root):
    from hnet.errors import DataError

    over = {"data.dir": str(tiny_data_root), "data.download": False, "data.n_tasks": 2}
    over["data.check_counts"] = False
    cfg = config.resolve("split_cifar10_100_zenke", "finetune", overrides=over, threads=1)
    with pytest.raises(DataError, match=r"real task sizes \[50000, 5000\].*\[50, 20\]"):
        run_job(cfg, tmp_path / "run", progress=False)


def test_neutral_settings_draw_no_augmentation_and_set_no_rates(tmp_path, monkeypatch):
    """Benchmarks without augmentation or schedule train exactly as before these keys."""
    from hnet.methods.hnet import HNET

    calls = []
    monkeypatch.setattr(HNET, "scale_lr", lambda self, f: calls.append(f))
    cfg = config.resolve("split_digits", "hnet", overrides={"train.iters": 5}, threads=1)
    run_job(cfg, tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / "state" / "ckpt.pt", weights_only=True)
    from hnet import rng

    assert torch.equal(state["augment"], rng.generator(0, "augment").get_state())
    assert calls == []


def test_epochs_count_validation_rows_held_out_of_the_training_set(tmp_path, digits_with_sizes):
    over = {"train.epochs": 1, "train.batch_size": 64, "data.val_fraction": 0.2}
    cfg = config.resolve("split_digits", "finetune", overrides=over, threads=1)
    res = run_job(cfg, tmp_path / "run", progress=False)  # no DataError: sizes match
    assert cfg["train"]["iters_per_task"] == [math.ceil(n / 64) for n in digits_with_sizes]
    assert "val_acc_matrix" in res
