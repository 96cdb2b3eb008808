"""Memory accounting: every method's ``memory_bytes`` against bytes computed here from the
shapes it must keep (not from the method's own tensors), and the record the job writes."""

from __future__ import annotations

import json
import math
import signal

import pytest
import torch
from steps import build
from steps import train as run_tasks

from hnet import config
from hnet.errors import JobInterrupted
from hnet.job.run import run_job
from hnet.methods import METHODS
from hnet.methods.common.budget import quotas

F32 = 4  # bytes of a float32: weights, Fisher values, importances, embeddings, targets


def trained(name, tasks=2, scenario="cl1", **over):
    """``name`` on split_digits after ``tasks`` tasks of 2 steps each (buffers, Fisher rows and
    targets exist once a task has ended)."""
    m = build(name, scenario, "split_digits", **over)
    run_tasks(m, range(tasks), iters=2, evaluate=False)
    return m


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def total(m) -> int:
    return sum(m.memory_bytes().values())


def test_finetune_and_scratch_keep_nothing():
    """scratch re-creates its network per task and keeps no earlier one (it is a control
    measured on the diagonal only)."""
    assert total(trained("finetune")) == 0
    assert total(trained("scratch")) == 0


@pytest.mark.parametrize("size", [1000, 7])
def test_replay_counts_rows_labels_and_task_ids_as_stored(size):
    m = trained("replay", tasks=3, **{"buffer.size": size})
    x = m.bench.tasks[0].x_train
    rows = sum(quotas(size, m.bench.n_tasks)[:3])
    row_bytes = math.prod(x.shape[1:]) * x.element_size()  # uint8 8×8 digits: 64
    want = {"samples": rows * row_bytes, "labels": rows * 8, "task_ids": rows * 8}
    assert row_bytes == 64 and m.memory_bytes() == want


def test_ewc_keeps_a_fisher_and_an_anchor_per_task_online_ewc_one_pair():
    P = n_params(trained("finetune").net)
    assert total(trained("ewc", tasks=3)) == 3 * 2 * P * F32
    assert total(trained("online_ewc", tasks=3)) == 2 * P * F32


def test_si_and_mas():
    P = n_params(trained("finetune").net)
    assert trained("si").memory_bytes() == {"importance": 2 * P * F32, "anchors": P * F32}
    assert trained("mas").memory_bytes() == {"importance": P * F32, "anchors": P * F32}


def test_joint_keeps_every_learned_tasks_training_set():
    m = trained("joint", tasks=3)
    rows = sum(t.n_train for t in m.bench.tasks[:3])
    assert m.memory_bytes() == {"samples": rows * 64, "labels": rows * 8}


@pytest.mark.parametrize(
    "over,kind",
    [
        ({"hnet.reg_impl": "direct"}, "direct"),
        ({"hnet.reg_impl": "gram"}, "gram"),
        ({"hnet.targets": "online"}, "online"),
    ],
)
def test_hnet_keeps_embeddings_and_the_regularizers_targets(over, kind):
    """After t tasks: t embeddings, and what protecting t tasks freezes: t × N outputs
    (direct), t × chunks × width features plus the output layer (gram), or a copy of Θ
    (online targets)."""
    m = trained("hnet", tasks=3, **over)
    h = m.hnet
    d = h.task_embs[0].numel()
    n_chunks, chunk, _ = h.layout()
    theta = sum(p.numel() for p in h.theta().values())
    width = m.arch["hidden"][-1]
    targets = {
        "direct": 3 * h.target_numel,
        "gram": 3 * n_chunks * width + width * chunk + chunk,
        "online": theta,
    }[kind]
    assert m.memory_bytes() == {"embeddings": 3 * d * F32, "targets": targets * F32}


def test_hnet_scratch_keeps_the_smaller_of_weights_and_hypernetwork_per_task():
    m = trained("hnet_scratch", tasks=3)
    h = m.hnet
    theta = sum(p.numel() for p in h.theta().values()) + h.task_embs[0].numel()
    per_task = min(theta, h.target_numel + h.padding)
    assert m.memory_bytes() == {"networks": 3 * per_task * F32}


def test_dgr_keeps_its_generator_and_frozen_copies_of_generator_and_classifier():
    m = trained("dgr_distill", tasks=2, **{"dgr_distill.gen_hidden": [16]})
    G, C = n_params(m.generator), n_params(m.net)
    assert m.memory_bytes() == {
        "generator": G * F32,
        "generator_copy": G * F32,
        "teacher": C * F32,
    }


TINY_VAE = {"enc_hidden": [8], "dec_hidden": [8], "latent": 4, "dec_size": "digits_dec"}


def replay_model_bytes(m, learned: int) -> dict[str, int]:
    """The protected VAE: its parameters, the decoder regularizer's targets (direct: one row of
    decoder weights per learned task, as split_digits' small decoder takes) and the frozen
    decoders of the learned tasks."""
    hn = m.rm.vae.hnet
    assert not m.rm.reg.choose_gram(hn, learned)  # small: the direct targets
    return {
        "generator": n_params(m.rm.vae) * F32,
        "generator_targets": learned * hn.target_numel * F32,
        "replay_source": learned * hn.target_numel * F32,
    }


def test_hnet_r_keeps_the_replay_model_and_the_teacher():
    m = trained(
        "hnet_r", tasks=2, scenario="cl3", **{f"hnet_r.{k}": v for k, v in TINY_VAE.items()}
    )
    want = {**replay_model_bytes(m, 2), "teacher": n_params(m.net) * F32}
    assert m.memory_bytes() == want


def test_hnet_tir_keeps_hnets_the_replay_model_and_the_inference_network():
    over = {f"hnet_tir.{k}": v for k, v in {**TINY_VAE, "tir_hidden": [8]}.items()}
    m = trained("hnet_tir", tasks=2, scenario="cl3", **{"hnet_tir.reg_impl": "direct", **over})
    h = m.hnet
    want = {
        "embeddings": 2 * h.task_embs[0].numel() * F32,
        "targets": 2 * h.target_numel * F32,
        **replay_model_bytes(m, 2),
        "task_inference": n_params(m.infer_net) * F32,
    }
    assert m.memory_bytes() == want


def test_the_vae_never_learns_the_last_task():
    """After the last task the replay model holds the tasks it learned: all but the last."""
    m = trained(
        "hnet_r", tasks=5, scenario="cl3", **{f"hnet_r.{k}": v for k, v in TINY_VAE.items()}
    )
    assert m.memory_bytes()["replay_source"] == replay_model_bytes(m, 4)["replay_source"]


def test_every_method_reports_bytes_by_kind():
    """Every registered method (the new ones too) answers with non-negative integers."""
    for name, cls in METHODS.items():
        scenario = cls.scenarios[-1]
        if cls.benchmarks is not None and "split_digits" not in cls.benchmarks:
            continue
        over = {f"{name}.{k}": v for k, v in TINY_VAE.items() if k in cls.defaults}
        m = trained(name, tasks=1, scenario=scenario, **over)
        got = m.memory_bytes()
        assert all(isinstance(v, int) and v >= 0 for v in got.values()), name


# -- the record in metrics.json ------------------------------------------------------------------
FAST = {"train.iters": 4, "train.log_every": 1}


def test_metrics_json_records_memory_after_every_task(tmp_path):
    cfg = config.resolve("split_digits", "ewc", overrides=FAST, threads=1)
    res = run_job(cfg, tmp_path / "run", progress=False)
    mem = json.loads((tmp_path / "run" / "metrics.json").read_text())["memory"]
    assert mem["exemplar_bytes"] == 64
    P = res["n_params_target"]
    for t, rec in enumerate(mem["per_task"]):
        want = 2 * (t + 1) * P * F32
        assert rec["bytes"] == {"fisher": want // 2, "anchors": want // 2}
        assert rec["total_bytes"] == want
        assert rec["total_mb"] == pytest.approx(want / 2**20)
        assert rec["exemplar_equivalents"] == pytest.approx(want / 64)
    assert res["memory_mb"] == mem["per_task"][-1]["total_mb"]
    assert res["memory_exemplars"] == mem["per_task"][-1]["exemplar_equivalents"]


def test_a_resumed_run_writes_the_same_memory_record(tmp_path):
    """SIGTERM in task 3: the record of tasks 1-2 comes back from the checkpoint, and the
    resumed run's metrics.json holds what the uninterrupted run's does."""
    cfg = config.resolve("split_digits", "replay", overrides=FAST, threads=1)
    whole = run_job(cfg, tmp_path / "whole", progress=False)

    def stop(kind, data):
        if kind == "loss" and (data["task"], data["step"]) == (2, 1):
            signal.raise_signal(signal.SIGTERM)

    with pytest.raises(JobInterrupted):
        run_job(cfg, tmp_path / "cut", progress=False, on_event=stop)
    state = torch.load(tmp_path / "cut" / "state" / "ckpt.pt", weights_only=True)
    assert [r is not None for r in state["memory"]] == [True, True, False, False, False]
    resumed = run_job(cfg, tmp_path / "cut", progress=False)
    assert resumed["resumed"] and resumed["memory"] == whole["memory"]
    assert resumed["memory_exemplars"] == whole["memory_exemplars"]
