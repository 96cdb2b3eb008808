"""``hnet train``'s request (hnet.job.request) and launcher (hnet.launch): the request is built
once from the arguments, the launcher decides reuse, packing and tracking from it alone."""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest

from hnet.cli import build_parser, main
from hnet.cli.train import request_from_args
from hnet.errors import ConfigError, HnetError
from hnet.job.request import Tracking, TrainRequest
from hnet.launch import destination, launch, plan, seed_command

FAST = ("--set", "train.iters=2", "--threads", "1", "--no-tracking", "-q")


def request(*argv: str) -> TrainRequest:
    return request_from_args(build_parser().parse_args(["train", "-b", "split_digits", *argv]))


# -- the request ----------------------------------------------------------------------------


def test_the_request_is_built_once_from_the_arguments():
    r = request(
        "-m", "ewc", "--seeds", "0-2,7", "--out", "runs/s{seed}", "--set", "train.lr=0.01",
        "--set", "train.iters=3", "--tracking-uri", "http://x", "--experiment", "study",
        "--if-changed", "restart", "--no-pack", "-q",
    )  # fmt: skip
    assert (r.benchmark, r.method, r.scenario, r.size) == ("split_digits", "ewc", "cl1", None)
    assert r.seeds == (0, 1, 2, 7) and r.seed_list
    assert r.overrides == ("train.lr=0.01", "train.iters=3")
    assert r.tracking == Tracking(uri="http://x", experiment="study", file=None, off=False)
    assert (r.if_changed, r.restart, r.pack, r.quiet, r.progress) == (
        "restart",
        False,
        False,
        True,
        False,
    )
    one = request("--seed", "5", "--out", "r")
    assert (one.seeds, one.seed_list, one.out, one.pack) == ((5,), False, "r", True)


def test_the_request_is_frozen_and_hashable():
    r = request("--seeds", "0,1", "--out", "r{seed}")
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.seeds = (3,)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.tracking.off = True  # type: ignore[misc]
    assert hash(r) == hash(request("--seeds", "0,1", "--out", "r{seed}"))


def test_configs_are_each_seeds_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = request("--seeds", "3,1", "--set", "train.iters=4", "--data-dir", "data", "--out", "x")
    cfgs = r.configs()
    assert [c["seed"] for c in cfgs] == [3, 1]
    assert all(c["train"]["iters"] == 4 for c in cfgs)
    assert cfgs[0]["data"]["dir"] == str(tmp_path / "data")  # resolved here, as given
    cfg, sources = r.resolved()[1]
    assert cfg == cfgs[1] and sources["train.iters"] == "--set"
    assert {k: v for k, v in cfgs[0].items() if k != "seed"} == {
        k: v for k, v in cfgs[1].items() if k != "seed"
    }


@pytest.mark.parametrize(
    "seeds,fix",
    [
        ("0,0", "give each seed once, at least one"),
        ("0,a", "'a' is not a seed; give seeds like 0,1,2 or 0-7"),
        ("3-1", "give each seed once, at least one"),
        ("", "is not a seed; give seeds like 0,1,2 or 0-7"),
    ],
)
def test_a_bad_seed_list_is_a_config_error_naming_the_fix(seeds, fix, tmp_path, capsys):
    with pytest.raises(ConfigError, match=fix):
        request("--seeds", seeds)
    assert main(["train", "-b", "split_digits", "--seeds", seeds, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"hnet train: error: --seeds {seeds!r}: ") and fix in err
    assert not list(tmp_path.iterdir())


def test_requests_that_cannot_be():
    with pytest.raises(ConfigError, match="give them as --seeds"):
        TrainRequest(benchmark="split_digits", seeds=(0, 1))
    with pytest.raises(ConfigError, match="give each seed once"):
        TrainRequest(benchmark="split_digits", seeds=())
    with pytest.raises(HnetError, match=r"needs --out DIR"):
        request().outs()
    with pytest.raises(HnetError, match=r"--seeds needs --out with a \{seed\} field"):
        request("--seeds", "0,1", "--out", "runs").outs()
    with pytest.raises(HnetError, match=r"--scratch needs a \{seed\} field"):
        request("--seeds", "0,1", "--out", "r{seed}", "--scratch", "s").scratches()


def test_one_seed_of_a_list_is_its_own_process_request(tmp_path):
    r = request("--seeds", "0,1", "--out", "r/s{seed}", "--scratch", "x/s{seed}", "--no-pack")
    one = r.for_seed(1)
    assert (one.seeds, one.out, one.scratch, one.seed_list) == ((1,), "r/s1", "x/s1", False)
    command = seed_command(r, 1)
    assert command[:4] == [sys.executable, "-m", "hnet.cli", "train"]
    assert request_from_args(build_parser().parse_args(command[3:])) == one
    assert "--no-pack" not in command and "--seeds" not in command


# -- the launcher's decisions ---------------------------------------------------------------


def test_tracking_destination(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert destination(Tracking(experiment="e")) == (None, "e")
    assert destination(Tracking(uri="http://h:5000", experiment="e")) == ("http://h:5000", "e")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert destination(Tracking()) == ("http://env:5000", "hnet")
    assert destination(Tracking(uri="http://h:5000", off=True)) == (None, "hnet")
    live, later = tmp_path / "live.json", tmp_path / "later.json"
    live.write_text(json.dumps({"uri": "http://s:1", "experiment": "study", "live": True}))
    later.write_text(json.dumps({"uri": "sqlite:///m.db", "experiment": "study", "live": False}))
    assert destination(Tracking(uri="http://h:5000", file=str(live))) == ("http://s:1", "study")
    assert destination(Tracking(file=str(later))) == (None, "study")  # mirrored after the jobs
    with pytest.raises(HnetError, match="not a tracking destination file"):
        destination(Tracking(file=str(tmp_path / "missing.json")))
    p = plan(request("--tracking-file", str(live), "--out", str(tmp_path / "r")))
    assert p.tracking == ("http://s:1", "study")


def test_pack_or_one_process_per_seed_and_why():
    out = ("--out", "r{seed}")
    p = plan(request("--seeds", "0,1", *out))
    assert (p.mode, p.why_not_packed) == ("packed", None)
    p = plan(request("-m", "ewc", "--seeds", "0,1", *out))
    assert (p.mode, p.why_not_packed) == ("processes", "method 'ewc' is not packable")
    assert p.tracking is None and p.aside == (None, None)  # each seed's process decides
    p = plan(request("--seeds", "0,1", "--no-pack", *out))
    assert (p.mode, p.why_not_packed) == ("processes", "--no-pack")
    p = plan(request("--seeds", "0,1", "--set", "hnet.targets=online", *out))
    assert p.mode == "processes" and "online" in p.why_not_packed
    p = plan(request("-m", "ewc", "--seed", "3", "--out", "r"))  # one seed trains right here
    assert (p.mode, p.why_not_packed, [c["seed"] for c in p.cfgs]) == ("single", None, [3])


def test_reuse_move_aside_or_refuse(tmp_path):
    out = tmp_path / "r"
    first = launch(request(*FAST, "--out", str(out)))
    assert [(r.seed, r.out, r.status) for r in first] == [(0, out, 0)]
    assert first[0].result == json.loads((out / "metrics.json").read_text())

    same = plan(request(*FAST, "--out", str(out), "--if-changed", "restart"))
    assert same.aside == (None,)  # same config: the job reuses the finished run
    again = launch(same)
    assert again[0].result["train_seconds"] == first[0].result["train_seconds"]

    changed = (*FAST, "--set", "train.lr=0.01", "--out", str(out))
    with pytest.raises(HnetError, match=r"different config.*--restart"):
        launch(request(*changed))  # --if-changed refuse (the default)
    assert not list(tmp_path.glob("r.old-*"))
    assert json.loads((out / "config.json").read_text())["train"]["lr"] != 0.01

    p = plan(request(*changed, "--if-changed", "restart"))
    assert p.aside == ("config changed",) and out.exists()  # planning moves nothing
    launch(p)
    assert len(list(tmp_path.glob("r.old-*"))) == 1
    assert json.loads((out / "config.json").read_text())["train"]["lr"] == 0.01

    assert plan(request(*changed, "--restart")).aside == ("--restart",)
    assert plan(request(*FAST, "--restart", "--out", str(tmp_path / "new"))).aside == (None,)


def test_packed_seeds_each_in_their_own_run_dir(tmp_path):
    runs = launch(request(*FAST, "--seeds", "0,1", "--out", str(tmp_path / "s{seed}")))
    assert [(r.seed, r.out) for r in runs] == [(0, tmp_path / "s0"), (1, tmp_path / "s1")]
    for r in runs:
        assert json.loads((r.out / "metrics.json").read_text()) == r.result
        assert r.result["seed"] == r.seed and r.status == 0
    assert runs[0].result["acc_matrix"] != runs[1].result["acc_matrix"]
