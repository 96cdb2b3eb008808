"""``hnet bench --for-study``: real bench processes measure every benchmark × method × size of
a study with ``resources: auto``, and the Snakefile's parse-time resources come from that file
(``snakemake -n`` shows them) until the study's own cells have finished."""

from __future__ import annotations

import json
import math
import subprocess

import yaml
from cli import hnet_argv
from smk import study_command

from hnet.study.autores import AutoResources
from hnet.study.grid import expand

STUDY = {
    "study": "auto",
    "benchmarks": ["split_digits"],
    "scenarios": ["cl1"],
    "methods": ["hnet", "finetune"],
    "seeds": [0, 1],
    "hparams": {"all": {"train.iters": 40}},
    "resources": {"split_digits": "auto"},
    "cluster": {"auto": {"safety": 2.0, "min_runtime": 1, "min_mem_mb": 100}},
}


def test_bench_for_study_writes_what_resources_auto_asks_for(tmp_path):
    config = tmp_path / "auto.yaml"
    config.write_text(yaml.safe_dump(STUDY))
    subprocess.run(
        hnet_argv("bench", "--for-study", str(config), "--steps", "3", "--threads", "1"),
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    pairs = json.loads((tmp_path / "results/auto/bench.json").read_text())["pairs"]
    assert sorted(pairs) == ["split_digits/finetune", "split_digits/hnet"]
    for e in pairs.values():
        # start-up + 5 tasks × 40 steps at the measured step times
        steps = e["step_seconds_first"], e["step_seconds_last"]
        assert e["steps"] == 5 * 40 and e["n_tasks"] == 5
        assert min(steps) * 200 <= e["train_seconds"] <= max(steps) * 200 + 1e-9
        assert e["eval_seconds"] > 0  # 6 · 5 scores of one task's test set
        assert e["seconds"] == e["startup_seconds"] + e["train_seconds"] + e["eval_seconds"]
        assert e["peak_rss_mb"] > 100
    hnet = pairs["split_digits/hnet"]
    want_mb = 100 * math.ceil(2.0 * hnet["peak_rss_mb"] / 100)
    want_min = max(1, math.ceil(2.0 * hnet["seconds"] / 60))
    auto = AutoResources(STUDY, tmp_path / "results/auto", expand(STUDY))
    assert auto.value("split_digits", "hnet", "mem_mb") == want_mb
    assert auto.value("split_digits", "hnet", "runtime") == want_min
    dry = subprocess.run(
        study_command(tmp_path, STUDY, "-n", "--cores", "1"), capture_output=True, text=True
    )
    assert dry.returncode == 0, dry.stdout[-2000:]
    line = f"split_digits × hnet: runtime {want_min}, mem_mb {want_mb} (from bench.json"
    assert line in dry.stderr  # the parse-time line
    assert f"runtime={want_min}," in dry.stdout and f"mem_mb={want_mb}," in dry.stdout  # jobs
