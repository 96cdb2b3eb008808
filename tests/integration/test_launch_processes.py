"""``hnet train --seeds`` for a method that is not packed: one ``hnet train`` process per seed
(hnet.launch), in the integration tier because it starts real processes."""

from __future__ import annotations

import json

from cli import REPO

from hnet.cli import build_parser, main
from hnet.cli.train import request_from_args
from hnet.job.request import TrainRequest
from hnet.launch import launch

FAST = ("--set", "train.iters=2", "--threads", "1", "--no-tracking", "-q")


def request(*argv: str) -> TrainRequest:
    return request_from_args(build_parser().parse_args(["train", "-b", "split_digits", *argv]))


def test_one_process_per_seed_every_seed_tried(tmp_path, monkeypatch, capfd):
    """A seed whose run dir holds another config fails in its own process; the other seed
    trains, and the command exits with the failed seed's status."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    launch(request(*FAST, "--seed", "1", "--out", str(tmp_path / "s1")))  # an hnet run
    capfd.readouterr()
    argv = ["-m", "ewc", *FAST, "--seeds", "0,1", "--out", str(tmp_path / "s{seed}")]
    assert main(["train", "-b", "split_digits", *argv]) == 2
    err = capfd.readouterr().err
    assert "not packing seeds 0,1 (method 'ewc' is not packable); one process per seed" in err
    assert "holds a run with a different config" in err
    assert "hnet train: seed 1 failed with exit status 2" in err
    assert json.loads((tmp_path / "s0" / "metrics.json").read_text())["method"] == "ewc"
    assert json.loads((tmp_path / "s1" / "metrics.json").read_text())["method"] == "hnet"
