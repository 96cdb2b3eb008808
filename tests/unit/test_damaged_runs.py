"""A run directory is never trusted blindly: a deleted config.json, a truncated checkpoint or
metrics.json, a garbage loss log are found before anything is resumed, then recovered exactly
or refused with one paragraph; nothing of the user's is deleted, states of two configs are
never mixed, and a full disk or a missing permission is one paragraph too."""

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from hnet import config
from hnet.cli import main
from hnet.errors import HnetError
from hnet.job.run import run_job
from hnet.methods.hnet import HNET
from hnet.rundir import CKPT, CKPT_PREV, CONFIG, LOSSES, METRICS

FAST = {"train.iters": 12, "train.batch_size": 32, "train.log_every": 4}
SAME = ("acc_matrix", "acc_init", "acc_final", "acc_during", "bwt", "fwt", "forgetting")


class Killed(BaseException):
    """A kill -9 stand-in: not an error the job records, just the end of the process."""


def cfg_of(**over):
    return config.resolve("split_digits", "hnet", seed=4, overrides={**FAST, **over})


def job(out, **over):
    return run_job(cfg_of(**over), out, progress=False)


def killed_in_task_3(out, monkeypatch):
    """Train until task 3 starts, then die: ckpt.pt is after task 2, ckpt.prev.pt after 1."""
    real = HNET.train_step

    def step(self, t, x, y):
        if t == 2:
            raise Killed
        return real(self, t, x, y)

    with monkeypatch.context() as m:
        m.setattr(HNET, "train_step", step)
        with pytest.raises(Killed):
            job(out)
    assert torch.load(out / CKPT, weights_only=True)["task"] == 2
    assert torch.load(out / CKPT_PREV, weights_only=True)["task"] == 1


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run."""
    out = tmp_path_factory.mktemp("ref") / "run"
    return job(out), out


def assert_same_result(res, ref):
    for key in SAME:
        assert res[key] == ref[key], key


def moved_aside(path):
    """The one copy of ``path`` moved aside (its bytes)."""
    (aside,) = path.parent.glob(f"{path.name}.old-*")
    return aside.read_bytes()


def cli_train(out, *extra):
    args = ["train", "-b", "split_digits", "--seed", "4", "-q", "--out", str(out)]
    for key, value in FAST.items():
        args += ["--set", f"{key}={value}"]
    return main([*args, *extra])


def one_paragraph(capsys):
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "Traceback" not in err
    return err


# -- config.json deleted -----------------------------------------------------------------------


def test_deleted_config_and_other_iters_is_refused_and_nothing_is_mixed(tmp_path, monkeypatch):
    out = tmp_path / "run"
    killed_in_task_3(out, monkeypatch)
    (out / CONFIG).unlink()
    before = {p.name: p.read_bytes() for p in (out / "state").iterdir()}
    with pytest.raises(HnetError, match=r"different config \(state/ckpt\.pt differs in: "
                       r"train\.iters\).*--restart"):  # fmt: skip
        job(out, **{"train.iters": 16})
    assert {p.name: p.read_bytes() for p in (out / "state").iterdir()} == before
    assert not (out / CONFIG).exists() and not (out / METRICS).exists()


def test_deleted_config_and_other_iters_in_a_study_restarts_cleanly(tmp_path, monkeypatch):
    """--if-changed restart (what studies use) moves the old run aside whole, then trains the
    new config from scratch: its result is that of a fresh run."""
    out = tmp_path / "run"
    killed_in_task_3(out, monkeypatch)
    (out / CONFIG).unlink()
    old_ckpt = (out / CKPT).read_bytes()
    assert cli_train(out, "--set", "train.iters=8", "--if-changed", "restart") == 0
    (aside,) = tmp_path.glob("run.old-*")
    assert (aside / CKPT).read_bytes() == old_ckpt
    res = json.loads((out / METRICS).read_text())
    assert res["config"]["train"]["iters"] == 8 and res["resumed"] is False


def test_deleted_finished_config_and_other_iters_is_refused(tmp_path, reference):
    out = tmp_path / "run"
    shutil.copytree(reference[1], out)
    (out / CONFIG).unlink()
    with pytest.raises(HnetError, match=r"metrics\.json differs in: train\.iters.*--restart"):
        job(out, **{"train.iters": 16})


def test_deleted_config_same_config_resumes_exactly(tmp_path, monkeypatch, reference):
    out = tmp_path / "run"
    killed_in_task_3(out, monkeypatch)
    (out / CONFIG).unlink()
    res = job(out)
    assert_same_result(res, reference[0])
    assert res["resumed"] is True
    assert json.loads((out / CONFIG).read_text()) == json.loads(json.dumps(cfg_of()))
    assert (out / LOSSES).read_bytes() == (reference[1] / LOSSES).read_bytes()


def test_deleted_config_and_another_method_is_a_clear_message(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    killed_in_task_3(out, monkeypatch)
    (out / CONFIG).unlink()
    assert cli_train(out, "-m", "ewc") == 2
    err = one_paragraph(capsys)
    assert f"hnet train: error: {out} holds a run with a different config" in err
    assert "state/ckpt.pt differs in:" in err and "method" in err and "--restart" in err
    assert "KeyError" not in err


# -- checkpoints --------------------------------------------------------------------------------


def test_truncated_checkpoint_falls_back_to_the_previous_one(tmp_path, monkeypatch, reference):
    out = tmp_path / "run"
    killed_in_task_3(out, monkeypatch)
    whole = (out / CKPT).read_bytes()
    (out / CKPT).write_bytes(whole[: len(whole) // 2])
    res = job(out)
    assert_same_result(res, reference[0])
    assert (out / LOSSES).read_bytes() == (reference[1] / LOSSES).read_bytes()
    assert moved_aside(out / CKPT) == whole[: len(whole) // 2]


def test_no_intact_checkpoint_is_refused_and_nothing_changes(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    killed_in_task_3(out, monkeypatch)
    for name in (CKPT, CKPT_PREV):
        (out / name).write_bytes((out / name).read_bytes()[:100])
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert cli_train(out) == 2
    err = one_paragraph(capsys)
    assert f"{out / CKPT} is damaged (" in err and f"{out / CKPT_PREV} is damaged (" in err
    assert "no intact checkpoint of this config is left" in err
    assert (
        "Nothing was moved or overwritten; pass --restart to move the run aside and start " in err
    )
    after = {p.relative_to(out) for p in out.rglob("*")}
    assert sorted(after - {Path("failed.json")}) == before  # failed.json: why the cell failed


def test_each_checkpoint_carries_the_run_identity_and_the_loss_log(tmp_path, reference):
    _, ref_out = reference
    state = torch.load(ref_out / CKPT, weights_only=True)
    assert state["run_key"] == config.run_key(cfg_of())
    assert json.loads(state["config"]) == json.loads(json.dumps(cfg_of()))
    assert state["log"].numpy().tobytes() == (ref_out / LOSSES).read_bytes()
    assert torch.load(ref_out / CKPT_PREV, weights_only=True)["task"] == state["task"] - 1


# -- metrics.json and the loss log --------------------------------------------------------------


def test_truncated_metrics_of_a_finished_run_is_recomputed(tmp_path, reference):
    ref, ref_out = reference
    out = tmp_path / "run"
    shutil.copytree(ref_out, out)
    text = (out / METRICS).read_text()
    (out / METRICS).write_text(text[: len(text) // 3])
    res = job(out)
    assert_same_result(res, ref)
    assert_same_result(json.loads((out / METRICS).read_text()), ref)
    assert res["train_seconds"] == ref["train_seconds"]  # from the final checkpoint
    assert moved_aside(out / METRICS).decode() == text[: len(text) // 3]
    assert job(out)["wall_seconds"] == res["wall_seconds"]  # finished again: reused


def test_a_result_without_its_config_is_trusted_only_with_config_json(tmp_path, reference):
    """metrics.json files of older versions may hold no config: config.json vouches for them."""
    ref, ref_out = reference
    out = tmp_path / "run"
    shutil.copytree(ref_out, out)
    old = {k: v for k, v in ref.items() if k != "config"}
    (out / METRICS).write_text(json.dumps(old))
    assert job(out) == json.loads(json.dumps(old))  # reused as it is
    (out / CONFIG).unlink()
    with pytest.raises(HnetError, match=r"metrics\.json holds no config .* --restart"):
        job(out)


def test_garbage_loss_log_is_restored_from_the_checkpoint(tmp_path, monkeypatch, reference):
    out = tmp_path / "run"
    killed_in_task_3(out, monkeypatch)
    (out / LOSSES).write_bytes(b"\x00garbage\xff\n" * 7)
    assert_same_result(job(out), reference[0])
    assert (out / LOSSES).read_bytes() == (reference[1] / LOSSES).read_bytes()
    assert moved_aside(out / LOSSES) == b"\x00garbage\xff\n" * 7


def test_garbage_loss_log_with_an_old_checkpoint_is_refused(tmp_path, monkeypatch, capsys):
    """A format 1 checkpoint (no copy of the log, no config) still resumes when config.json
    vouches for it, but cannot restore a damaged log: a clear refusal, nothing changed."""
    out = tmp_path / "run"
    killed_in_task_3(out, monkeypatch)
    state = torch.load(out / CKPT, weights_only=True)
    for key in ("log", "config", "run_key"):
        del state[key]
    torch.save({**state, "format": 1}, out / CKPT)
    (out / LOSSES).write_bytes(b"not a loss log\n")
    assert cli_train(out) == 2
    err = one_paragraph(capsys)
    assert f"{out / LOSSES} is damaged (its first " in err
    assert f"its checkpoint {out / CKPT} (written by an older hnet) holds no copy" in err
    assert "pass --restart" in err
    assert (out / LOSSES).read_bytes() == b"not a loss log\n"


# -- a full disk, a missing permission -----------------------------------------------------------


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_disk_full_or_no_permission_is_one_paragraph(tmp_path, monkeypatch, capsys, code):
    """The third file written (the checkpoint after task 2) fails: the CLI names it and says
    what to do; what was written before is whole and the job resumes from it."""
    calls, real_fsync = [], os.fsync

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    out = tmp_path / "run"
    monkeypatch.setattr(os, "fsync", fsync)
    assert cli_train(out) == 2
    err = one_paragraph(capsys)
    assert err.startswith(f"hnet train: error: cannot write {out / CKPT}: {os.strerror(code)}.")
    assert "then run the same command again" in err
    assert torch.load(out / CKPT, weights_only=True)["task"] == 1
    assert json.loads((out / CONFIG).read_text())["seed"] == 4
