"""The job: metrics.json contents, determinism, run-dir safety and the CLI's error messages."""

import json

import numpy as np
import pytest

from hnet import config
from hnet.cli import main
from hnet.data import mnist
from hnet.data.idx import write_idx
from hnet.errors import HnetError
from hnet.job.run import run_job

FAST = {"train.iters": 30, "train.batch_size": 32}
REQUIRED = (
    "acc_matrix",
    "acc_init",
    "acc_final",
    "acc_during",
    "bwt",
    "fwt",
    "forgetting",
    "n_params_hnet",
    "n_params_target",
    "compression_ratio",
    "train_seconds",
    "peak_rss_mb",
    "config",
    "versions",
)


def job(tmp_path, name="run", seed=0, **over):
    cfg = config.resolve("split_digits", "hnet", seed=seed, overrides={**FAST, **over})
    return run_job(cfg, tmp_path / name, progress=False)


def test_metrics_json_has_every_field_and_consistent_values(tmp_path):
    res = job(tmp_path)
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(res))
    for key in REQUIRED:
        assert key in on_disk, key
    R = np.array(on_disk["acc_matrix"])
    assert R.shape == (5, 5) and np.all((R >= 0) & (R <= 100))
    assert on_disk["acc_final"] == pytest.approx(R[-1].mean())
    assert on_disk["acc_during"] == pytest.approx(np.diag(R).mean())
    assert on_disk["compression_ratio"] == pytest.approx(
        on_disk["n_params_hnet"] / on_disk["n_params_target"]
    )
    assert on_disk["config"]["train"]["iters"] == 30
    assert on_disk["versions"]["torch"]
    assert (tmp_path / "run" / "config.json").exists()
    lines = (tmp_path / "run" / "losses.jsonl").read_text().splitlines()
    assert {json.loads(ln)["task"] for ln in lines} == set(range(5))


def test_same_seed_same_matrix_different_seed_differs(tmp_path):
    a = job(tmp_path, "a", seed=1)["acc_matrix"]
    b = job(tmp_path, "b", seed=1)["acc_matrix"]
    c = job(tmp_path, "c", seed=2)["acc_matrix"]
    assert a == b
    assert a != c


def test_beta_protects_earlier_tasks(tmp_path):
    """With the regularizer the first task survives; without it, it is overwritten."""
    over = {"train.iters": 150, "train.lr": 3e-3}
    kept = job(tmp_path, "kept", **over, **{"hnet.beta": 0.05})
    lost = job(tmp_path, "lost", **over, **{"hnet.beta": 0.0})
    assert kept["bwt"] > -2.0
    assert lost["bwt"] < kept["bwt"] - 5.0


def test_finished_run_is_reused_and_a_different_config_refused(tmp_path):
    first = job(tmp_path)
    again = job(tmp_path)  # same config: nothing is recomputed
    assert again["train_seconds"] == first["train_seconds"]
    with pytest.raises(HnetError, match=r"different config.*--restart"):
        job(tmp_path, **{"train.lr": 0.5})


def test_a_run_moved_to_another_machine_is_the_same_run(tmp_path):
    """Machine-only keys (threads, device, data location) are not identity: a finished run is
    reused, not refused, when only they differ."""
    first = job(tmp_path)
    cfg = config.resolve("split_digits", "hnet", overrides=FAST, threads=1, device="cpu")
    cfg["data"]["dir"] = str(tmp_path / "elsewhere")
    again = run_job(cfg, tmp_path / "run", progress=False)
    assert again["train_seconds"] == first["train_seconds"]


def test_cli_train_and_restart_moves_old_run_aside(tmp_path, capsys):
    args = [
        "train",
        "-b",
        "split_digits",
        "--set",
        "train.iters=5",
        "--out",
        str(tmp_path / "r"),
        "-q",
    ]
    assert main(args) == 0
    assert "acc_final=" in capsys.readouterr().out
    assert main([*args, "--restart"]) == 0
    assert len(list(tmp_path.glob("r.old-*"))) == 1
    assert (tmp_path / "r" / "metrics.json").exists()


def test_if_changed_restart_moves_only_a_different_config_aside(tmp_path, capsys):
    base = [
        "train",
        "-b",
        "split_digits",
        "--set",
        "train.iters=5",
        "-q",
        "--out",
        str(tmp_path / "r"),
        "--if-changed",
        "restart",
    ]
    assert main(base) == 0
    assert main(base) == 0  # same config: finished run reused, nothing moved
    assert not list(tmp_path.glob("r.old-*"))
    assert main([*base, "--set", "train.lr=0.01"]) == 0
    assert len(list(tmp_path.glob("r.old-*"))) == 1
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["train"]["lr"] == 0.01


@pytest.mark.parametrize(
    "args,needle",
    [
        (["-b", "split_digit"], "Unknown benchmark 'split_digit'. Did you mean 'split_digits'"),
        (["-b", "split_digits", "--set", "train.lrr=1"], "Unknown config key 'train.lrr'"),
        (["-b", "split_digits", "--set", "train.lr=fast"], "expected a float"),
        (["-b", "split_digits", "--set", "trainlr"], "not of the form key=value"),
        (["-b", "split_digits", "--size", "huge"], "Unknown size 'huge'"),
        (["-b", "split_digits", "--scenario", "cl4"], "Unknown scenario 'cl4'"),
        (["-b", "toy_regression", "--scenario", "cl3"], "does not support scenario 'cl3'"),
        (["-b", "split_digits", "-m", "ewcc"], "Unknown method 'ewcc'"),
    ],
)
def test_cli_config_errors_are_one_paragraph(tmp_path, capsys, args, needle):
    assert main(["train", *args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err
    assert "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


@pytest.fixture
def no_system_data(monkeypatch):
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {"MNIST": (), "FashionMNIST": ()})
    monkeypatch.delenv("HNET_DATA", raising=False)


def test_cli_missing_data_dir(tmp_path, capsys, no_system_data):
    rc = main(
        [
            "train",
            "-b",
            "split_fmnist",
            "--data-dir",
            str(tmp_path / "nowhere"),
            "--set",
            "data.download=false",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "Fashion-MNIST" in err and str(tmp_path / "nowhere") in err
    assert "HNET_DATA" in err and "dataset-fashion-mnist" in err
    assert "\n" not in err and "Traceback" not in err


def test_cli_corrupt_idx_file(tmp_path, capsys, no_system_data):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, shape in (
        ("train-images-idx3-ubyte", (60, 28, 28)),
        ("t10k-images-idx3-ubyte", (10, 28, 28)),
        ("train-labels-idx1-ubyte", (60,)),
        ("t10k-labels-idx1-ubyte", (10,)),
    ):
        write_idx(raw / name, np.zeros(shape, dtype=np.uint8))
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    rc = main(
        [
            "train",
            "-b",
            "split_mnist",
            "--data-dir",
            str(tmp_path),
            "--set",
            "data.download=false",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "train-images-idx3-ubyte" in err and "Traceback" not in err


def test_divergence_in_a_later_task_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    import torch

    from hnet.methods.hnet import HNET

    real_step = HNET.train_step

    def step(self, task, x, y):
        return torch.tensor(float("nan")) if task == 2 else real_step(self, task, x, y)

    monkeypatch.setattr(HNET, "train_step", step)
    with pytest.raises(HnetError, match=r"task 3, step 1\b"):
        job(tmp_path)
    state = torch.load(tmp_path / "run" / "state" / "ckpt.pt", weights_only=True)
    assert state["task"] == 2 and state["step"] == 0  # after task 2, the last good one
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_diverging_training_names_task_and_step(tmp_path):
    with pytest.raises(HnetError, match=r"diverged.*task 1, step \d+"):
        job(tmp_path, **{"train.lr": 1e30})


@pytest.mark.parametrize("mask_heads", [False, True])
def test_hnet_mid_task_state_restores_the_regularizer_without_recomputing(mask_heads):
    import io

    import torch

    from hnet.data import load_benchmark
    from hnet.methods import METHODS

    cfg = config.resolve("split_digits", "hnet", overrides={"hnet.mask_heads": mask_heads})
    bench = load_benchmark("split_digits", cfg["data"], 0)
    a = METHODS.get("hnet")(cfg, bench, torch.device("cpu"))
    for t in range(2):
        a.begin_task(t)
        for _ in range(3):
            a.train_step(t, *bench.tasks[t].train_batch(torch.arange(16)))
    buf = io.BytesIO()  # through a file, as a checkpoint does (state_dict tensors are aliases)
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = METHODS.get("hnet")(cfg, bench, torch.device("cpu"))
    b.load_state_dict(torch.load(buf, weights_only=True))
    assert (b.reg.masks is not None) == mask_heads
    x, y = bench.tasks[1].train_batch(torch.arange(16, 32))
    assert torch.equal(a.train_step(1, x, y), b.train_step(1, x, y))
    assert torch.equal(a.weights(0), b.weights(0))
