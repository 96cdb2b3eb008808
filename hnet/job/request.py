"""What one ``hnet train`` call asks for, typed and fixed once: :class:`TrainRequest`.

The command line builds it once from its arguments and hands it to the launcher
(:mod:`hnet.launch`), which decides from it alone whether a run directory is reused or moved
aside, whether the seeds are packed, and where the MLflow mirror goes; nothing below the command
line sees an ``argparse.Namespace``. A request is also what one
seed's own ``hnet train`` process is started with: :meth:`TrainRequest.argv` writes it back as
arguments, :meth:`TrainRequest.for_seed` narrows it to one seed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hnet.errors import ConfigError, HnetError

SEED = "{seed}"  # the field of --out and --scratch templates


def parse_seeds(text: str) -> tuple[int, ...]:
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
    return tuple(seeds)


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """One grid cell but for its seed: everything the job config is resolved from."""

    benchmark: str
    method: str = "hnet"
    scenario: str = "cl1"
    size: str | None = None
    overrides: tuple[str, ...] = ()  # KEY=VALUE, later ones win
    device: str | None = None
    threads: int | None = None
    data_dir: str | None = None  # as given; resolved against the working directory

    def config(self, seed: int) -> tuple[dict[str, Any], dict[str, str]]:
        """The resolved job config of ``seed`` and, per dotted key, where its value came from.
        Raises :class:`ConfigError` naming the offending key or name."""
        from hnet.config import parse_set, resolve_with_sources

        overrides = parse_set(list(self.overrides))
        if self.data_dir:
            overrides["data.dir"] = str(Path(self.data_dir).expanduser().resolve())
        return resolve_with_sources(
            self.benchmark,
            self.method,
            scenario=self.scenario,
            seed=seed,
            size=self.size,
            overrides=overrides,
            device=self.device,
            threads=self.threads,
        )


@dataclass(frozen=True)
class Tracking:
    """Where the job's MLflow mirror goes: nowhere (``off``), the destination a study wrote to
    ``file``, else ``uri`` (None: ``$MLFLOW_TRACKING_URI``, if set) under ``experiment``."""

    uri: str | None = None
    experiment: str = "hnet"
    file: str | None = None
    off: bool = False


@dataclass(frozen=True, kw_only=True)
class TrainRequest(JobSpec):
    """One ``hnet train`` call: the cell, its seeds, where each seed's run goes, and how.

    ``seed_list`` says the seeds were given as a list (``--seeds``): then ``out`` (and
    ``scratch``) are templates with a ``{seed}`` field, and the launcher may pack the seeds;
    otherwise there is one seed, ``out`` is its run directory and it trains in this process.
    """

    seeds: tuple[int, ...] = (0,)
    seed_list: bool = False
    out: str | None = None
    scratch: str | None = None
    restart: bool = False
    if_changed: Literal["refuse", "restart"] = "refuse"
    tracking: Tracking = Tracking()
    quiet: bool = False
    pack: bool = True

    def __post_init__(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds {list(self.seeds)}: give each seed once, at least one.")
        if len(self.seeds) > 1 and not self.seed_list:
            raise ConfigError("several seeds are a seed list: give them as --seeds 0,1,2.")
        if self.if_changed not in ("refuse", "restart"):
            raise ConfigError(f"if_changed {self.if_changed!r}: refuse or restart.")

    @property
    def progress(self) -> bool | None:
        """``run_job``'s progress: off when quiet, else its own default."""
        return False if self.quiet else None

    def resolved(self) -> list[tuple[dict[str, Any], dict[str, str]]]:
        """Each seed's config and its sources, in the order of ``seeds``."""
        return [self.config(s) for s in self.seeds]

    def configs(self) -> list[dict[str, Any]]:
        """Each seed's resolved job config, in the order of ``seeds``."""
        return [cfg for cfg, _ in self.resolved()]

    def outs(self) -> list[Path]:
        """Each seed's run directory."""
        if not self.seed_list:
            if self.out is None:
                raise HnetError("hnet train needs --out DIR (the run directory to write).")
            return [Path(self.out)]
        if self.out is None or SEED not in self.out:
            raise HnetError(
                "hnet train --seeds needs --out with a {seed} field, e.g. --out "
                "'runs/seed{seed}' (one run directory per seed)."
            )
        return [Path(self.out.replace(SEED, str(s))) for s in self.seeds]

    def scratches(self) -> list[str | None]:
        """Each seed's matching scratch run, if any."""
        if self.scratch is None:
            return [None] * len(self.seeds)
        if not self.seed_list:
            return [self.scratch]
        if SEED not in self.scratch:
            raise HnetError(
                "with --seeds, --scratch needs a {seed} field (one scratch run per seed)."
            )
        return [self.scratch.replace(SEED, str(s)) for s in self.seeds]

    def for_seed(self, seed: int) -> TrainRequest:
        """This request narrowed to one of its seeds, as that seed's own ``hnet train --seed``
        process gets it: its own run directory and scratch run, nothing left to pack."""
        i = self.seeds.index(seed)
        return dataclasses.replace(
            self,
            seeds=(seed,),
            seed_list=False,
            out=str(self.outs()[i]),
            scratch=self.scratches()[i],
            pack=True,
        )

    def argv(self) -> list[str]:
        """The ``hnet train`` arguments that build this request again (one seed or a list)."""
        seeds = ",".join(map(str, self.seeds))
        argv = ["--seeds", seeds] if self.seed_list else ["--seed", seeds]
        if self.out is not None:
            argv += ["--out", self.out]
        options = {
            "--benchmark": self.benchmark,
            "--scenario": self.scenario,
            "--method": self.method,
            "--size": self.size,
            "--device": self.device,
            "--threads": self.threads,
            "--data-dir": self.data_dir,
            "--if-changed": self.if_changed,
            "--tracking-uri": self.tracking.uri,
            "--experiment": self.tracking.experiment,
            "--tracking-file": self.tracking.file,
        }
        for option, value in options.items():
            if value is not None:
                argv += [option, str(value)]
        flags = {
            "--restart": self.restart,
            "--no-tracking": self.tracking.off,
            "--quiet": self.quiet,
            "--no-pack": not self.pack,
        }
        argv += [flag for flag, on in flags.items() if on]
        for item in self.overrides:
            argv += ["--set", item]
        if self.scratch is not None:
            argv += ["--scratch", self.scratch]
        return argv
