"""``hnet train --seeds 0,1,2 --out 'DIR/seed{seed}'``: several seeds of one cell, one command.

The seeds' run directories come from one ``--out`` template with a ``{seed}`` field, so a
Snakemake rule can declare every seed's ``metrics.json`` as an output of one job. Each directory
is written exactly as ``hnet train --seed S --out DIR/seedS`` would write it. A packable method
(:func:`hnet.methods.common.packed.refusal`) trains the seeds still missing in one process,
parameters stacked on a seed axis (:mod:`hnet.job.packed`); any other method, or
``--no-pack``, runs one ``hnet train`` process per seed, one after the other.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

from hnet.cli.common import config_changed, printable, resolve_job, tracking_destination
from hnet.errors import ConfigError, HnetError
from hnet.rundir import METRICS, move_aside


def parse_seeds(text: str) -> list[int]:
    """``0,1,2`` or ``0-7`` (inclusive) or a mix, in the order given, no repeats."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                seeds += range(int(lo), int(hi) + 1)
            else:
                seeds.append(int(part))
        except ValueError:
            raise ConfigError(
                f"--seeds {text!r}: {part!r} is not a seed; give seeds like 0,1,2 or 0-7."
            ) from None
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ConfigError(f"--seeds {text!r}: give each seed once, at least one.")
    return seeds


def seed_dirs(template: str | None, seeds: list[int]) -> list[Path]:
    if template is None or "{seed}" not in template:
        raise HnetError(
            "hnet train --seeds needs --out with a {seed} field, e.g. --out 'runs/seed{seed}' "
            "(one run directory per seed)."
        )
    return [Path(template.replace("{seed}", str(s))) for s in seeds]


def run_seeds(args: argparse.Namespace) -> int:
    """``hnet train --seeds``: the packed job, or one process per seed."""
    from hnet.metrics import METRICS as TABLE

    seeds = parse_seeds(args.seeds)
    outs = seed_dirs(args.out, seeds)
    cfgs = []
    for s in seeds:
        one = copy.copy(args)
        one.seed = s
        cfgs.append(resolve_job(one)[0])
    from hnet.methods.common.packed import refusal

    why = "--no-pack" if args.no_pack else refusal(cfgs[0])
    if why is not None:
        print(
            f"hnet train: not packing seeds {args.seeds} ({why}); one process per seed",
            file=sys.stderr,
        )
        return one_process_per_seed(args, seeds, outs)
    for cfg, out in zip(cfgs, outs, strict=True):
        if out.exists() and (
            args.restart or (args.if_changed == "restart" and config_changed(out, cfg))
        ):
            move_aside(out)
    results = train_packed_with_mirrors(args, cfgs, outs)
    for s, out, res in zip(seeds, outs, results, strict=True):
        line = " ".join(f"{m.name}={res[m.name]:.4g}" for m in TABLE if printable(m, res))
        print(f"seed {s}: {line}")
        print(f"wrote {out / METRICS}")
    return 0


def scratch_dirs(args: argparse.Namespace, seeds: list[int]) -> list[str | None]:
    if args.scratch is None:
        return [None] * len(seeds)
    if "{seed}" not in args.scratch:
        raise HnetError("with --seeds, --scratch needs a {seed} field (one scratch run per seed).")
    return [args.scratch.replace("{seed}", str(s)) for s in seeds]


def train_packed_with_mirrors(
    args: argparse.Namespace, cfgs: list[dict[str, Any]], outs: list[Path]
) -> list[dict[str, Any]]:
    """The packed job, each seed mirrored to its own MLflow run as its own job would be."""
    from hnet.job.packed import run_packed

    uri, experiment = tracking_destination(args)
    progress = False if args.quiet else None
    scratch = scratch_dirs(args, [c["seed"] for c in cfgs])
    if uri is None:
        return run_packed(cfgs, outs, progress=progress, scratch=scratch)
    from hnet.tracking.mirror import Mirror

    with contextlib.ExitStack() as stack:
        mirrors = [
            stack.enter_context(Mirror(uri, experiment, cfg, out))
            for cfg, out in zip(cfgs, outs, strict=True)
        ]
        events = [m.on_event for m in mirrors]
        return run_packed(cfgs, outs, progress=progress, scratch=scratch, on_event=events)


# Arguments of `hnet train` that the per-seed processes get as they were (dest → option);
# seed, seeds and out are per seed, no_pack and print_config do not apply.
PASSED = {
    "benchmark": "--benchmark",
    "scenario": "--scenario",
    "method": "--method",
    "size": "--size",
    "device": "--device",
    "threads": "--threads",
    "data_dir": "--data-dir",
    "if_changed": "--if-changed",
    "tracking_uri": "--tracking-uri",
    "experiment": "--experiment",
    "tracking_file": "--tracking-file",
}
FLAGS = {"restart": "--restart", "no_tracking": "--no-tracking", "quiet": "--quiet"}
PER_SEED = {"seed", "seeds", "out", "scratch", "overrides", "no_pack", "print_config"}
PARSER = {"command", "func"}  # argparse bookkeeping


def seed_argv(args: argparse.Namespace, seed: int, out: Path, scratch: str | None) -> list[str]:
    """``hnet train`` arguments of one seed of ``args``."""
    argv = ["--seed", str(seed), "--out", str(out)]
    for dest, option in PASSED.items():
        if getattr(args, dest) is not None:
            argv += [option, str(getattr(args, dest))]
    argv += [option for dest, option in FLAGS.items() if getattr(args, dest)]
    for item in args.overrides:
        argv += ["--set", item]
    if scratch is not None:
        argv += ["--scratch", scratch]
    return argv


def one_process_per_seed(args: argparse.Namespace, seeds: list[int], outs: list[Path]) -> int:
    """Each seed as its own ``hnet train`` process, one after the other; every seed is tried,
    the exit status is the first failure's (0 if none failed)."""
    status = 0
    for s, out, scratch in zip(seeds, outs, scratch_dirs(args, seeds), strict=True):
        argv = [sys.executable, "-m", "hnet.cli", "train", *seed_argv(args, s, out, scratch)]
        code = subprocess.run(argv).returncode
        if code != 0:
            print(f"hnet train: seed {s} failed with exit status {code}", file=sys.stderr)
            status = status or code
    return status
