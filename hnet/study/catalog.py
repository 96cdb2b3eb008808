"""What exists, without importing torch: benchmarks, methods, scenarios and size presets.

Study workflows validate their grid when Snakemake parses the Snakefile, which happens once per
study and again inside every cluster job, so it must not pay torch's import. The registries
(the truth) live in torch-importing modules; this module snapshots their names and capabilities
into ``catalog.json`` beside it. ``python -m hnet.study.catalog`` rewrites the snapshot, and a test
fails when it is stale, so adding a method or benchmark stays "one file plus one line" (plus
this command, which the failing test prints).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from hnet.models.sizes import RATIO

PATH = Path(__file__).with_name("catalog.json")


# Sections of the job config every method has, whose keys a study may sweep (with their defaults
# per benchmark in the catalog); a method's own section is named after the method.
SHARED_SECTIONS = ("data", "target", "train")


def build() -> dict[str, Any]:
    """The catalog computed from the live registries (imports torch).

    Besides names and capabilities it holds the default of every sweepable config key, so a
    study's sweeps are checked for unknown keys and wrong value types while the Snakefile is
    parsed: per benchmark the leaves of the shared sections (``config``), per method its
    hyperparameters (``hparams``, the defaults of its own config section).
    """
    from hnet.config import GLOBAL_DEFAULTS, REHEARSAL_DEFAULTS, deep_merge, leaves
    from hnet.data import BENCHMARKS
    from hnet.methods import METHODS, tuned
    from hnet.models.sizes import SIZES
    from hnet.scenarios import SCENARIOS

    def shared_keys(defaults: dict[str, Any]) -> dict[str, Any]:
        merged = deep_merge(GLOBAL_DEFAULTS, defaults)
        return leaves({k: merged[k] for k in SHARED_SECTIONS if k in merged})

    def buffer_sizes(method: str) -> dict[str, int]:
        """The default ``buffer.size`` of a rehearsal method per benchmark (tuned/buffer.yaml
        over REHEARSAL_DEFAULTS): the buffer axis of a study without ``buffer_sizes``."""
        out = {}
        for b, spec in BENCHMARKS.items():
            found = tuned.matches("buffer", b, spec.scenarios[0], method)
            out[b] = ([REHEARSAL_DEFAULTS] + [v for v, _ in found])[-1]["size"]
        return out

    return json.loads(
        json.dumps(
            {
                "scenarios": list(SCENARIOS),
                "benchmarks": {
                    name: {
                        "scenarios": list(spec.scenarios),
                        "kind": spec.kind,
                        "config": shared_keys(spec.defaults),
                    }
                    for name, spec in BENCHMARKS.items()
                },
                "methods": {
                    name: {
                        "scenarios": list(cls.scenarios),
                        "sized": bool(cls.sized),
                        "benchmarks": None if cls.benchmarks is None else list(cls.benchmarks),
                        "generative": bool(cls.generative),
                        "packable": bool(cls.packable),
                        "rehearsal": bool(cls.rehearsal),
                        **({"buffer_size": buffer_sizes(name)} if cls.rehearsal else {}),
                        "hparams": dict(cls.defaults),
                    }
                    for name, cls in METHODS.items()
                },
                "sizes": ["official", *SIZES.names()],
            }
        )
    )


@cache
def load() -> dict[str, Any]:
    """The snapshot (no torch)."""
    return json.loads(PATH.read_text())


def is_valid_size(name: str) -> bool:
    return name in load()["sizes"] or RATIO.match(name) is not None


def is_sized(method: str) -> bool:
    """Does the hypernetwork size axis apply to ``method``? (Unknown methods: no.)"""
    meta = load()["methods"].get(method)
    return bool(meta and meta["sized"])


def is_packable(method: str) -> bool:
    """Can one process train several seeds of ``method`` at once (``pack_seeds``)? (Unknown:
    no.) A packable method may still fall back to one seed after another for some configs
    (hnet.methods.common.packed.refusal); the results are the same either way."""
    meta = load()["methods"].get(method)
    return bool(meta and meta.get("packable"))


def is_rehearsal(method: str) -> bool:
    """Does ``method`` store training samples, so its config has ``buffer.size`` and the
    study's buffer axis multiplies it? (Unknown: no.)"""
    meta = load()["methods"].get(method)
    return bool(meta and meta.get("rehearsal"))


def default_buffer_size(method: str, benchmark: str) -> int:
    """``buffer.size`` of a rehearsal method on ``benchmark`` when nothing sets it."""
    return int(load()["methods"][method]["buffer_size"][benchmark])


def is_generative(method: str) -> bool:
    """Does ``method`` save generated samples (samples.npz) for the report? (Unknown: no.)"""
    meta = load()["methods"].get(method)
    return bool(meta and meta.get("generative"))


def write() -> None:
    PATH.write_text(json.dumps(build(), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    write()
    print(f"wrote {PATH}")
