"""``hnet train --seeds``: one command for several seeds, packed or one process per seed."""

import json
import signal
import subprocess
import time

import torch
from cli import env, hnet_argv

SETS = ("--set", "train.iters=200", "--set", "train.log_every=10")


def seeds_argv(out, seeds, *extra, method="hnet"):
    return hnet_argv(
        "train", "-q", "-b", "split_digits", "-m", method, "--threads", "1", *SETS,
        "--seeds", seeds, "--out", str(out / "seed{seed}"), *extra,
    )  # fmt: skip


def run(argv):
    return subprocess.run(argv, env=env(), capture_output=True, text=True, timeout=300)


def metrics(out, seed):
    return json.loads((out / f"seed{seed}" / "metrics.json").read_text())


def test_packed_seeds_skip_finished_ones_and_resume_after_sigterm(tmp_path):
    ref = tmp_path / "ref"
    done = run(seeds_argv(ref, "0,1"))
    assert done.returncode == 0, done.stderr
    out = tmp_path / "runs"
    proc = subprocess.Popen(seeds_argv(out, "0,1"), env=env(), stderr=subprocess.PIPE, text=True)
    log, deadline = out / "seed1" / "losses.jsonl", time.monotonic() + 120
    while not (log.exists() and any('"task": 2' in ln for ln in log.read_text().splitlines())):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    points = [  # both seeds checkpointed at the same task and step, mid task 3
        torch.load(out / f"seed{s}" / "state" / "ckpt.pt", weights_only=True) for s in (0, 1)
    ]
    assert {(c["task"], c["step"]) for c in points} == {(points[0]["task"], points[0]["step"])}
    assert points[0]["task"] >= 2  # the signal came during task 3 (or at its end)
    done = run(seeds_argv(out, "0-2"))  # resumes 0 and 1, adds 2
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    for s in (0, 1):
        assert metrics(out, s)["acc_matrix"] == metrics(ref, s)["acc_matrix"]
        assert metrics(out, s)["resumed"]
    again = run(seeds_argv(out, "0-2"))
    assert again.returncode == 0 and again.stderr.count("is finished, skipped") == 3


def test_a_method_that_does_not_pack_runs_one_process_per_seed(tmp_path):
    done = run(seeds_argv(tmp_path, "0,1", method="ewc"))
    assert done.returncode == 0, done.stderr
    assert "not packing seeds 0,1 (method 'ewc' is not packable); one process per seed" in (
        done.stderr
    )
    for s in (0, 1):
        assert metrics(tmp_path, s)["seed"] == s and metrics(tmp_path, s)["method"] == "ewc"


def test_seeds_need_a_seed_field_in_out(tmp_path):
    done = run(hnet_argv("train", "-b", "split_digits", "--seeds", "0,1", "--out", str(tmp_path)))
    assert done.returncode == 2 and "{seed}" in done.stderr
