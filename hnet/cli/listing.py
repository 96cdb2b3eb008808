"""``hnet list``: benchmarks, methods (with their scenarios), scenarios and size presets."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("list", help="benchmarks, methods, scenarios and size presets")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hnet.data import BENCHMARKS
    from hnet.methods import METHODS
    from hnet.models.sizes import SIZES
    from hnet.scenarios import SCENARIOS

    print("benchmarks:")
    for name, spec in BENCHMARKS.items():
        size = spec.defaults.get("size", "-")
        print(f"  {name:18s} {'/'.join(spec.scenarios):14s} size={size:8s} {spec.description}")
    print("methods:")
    for name, cls in METHODS.items():
        print(f"  {name:18s} {'/'.join(cls.scenarios):14s} {cls.summary}")
        if cls.benchmarks is not None:
            print(f"  {'':18s} {'':14s} only on: {', '.join(cls.benchmarks)}")
        if cls.rehearsal:  # the shared buffer, the study's buffer_sizes axis
            print(f"  {'':18s} {'':14s} rehearsal: stores buffer.size training samples")
    print("scenarios:")
    for name, text in SCENARIOS.items():
        print(f"  {name:18s} {text}")
    print("size presets (also: official = the benchmark's default, cr<ratio> e.g. cr0.5):")
    for name, arch in SIZES.items():
        print(f"  {name:18s} {describe_size(arch)}")
    return 0


def describe_size(arch: dict[str, Any]) -> str:
    shape = (
        f"chunk {arch['chunk_size']}, chunk emb {arch['chunk_emb']}, "
        if arch["chunked"]
        else "full, "
    )
    return f"{shape}task emb {arch['task_emb']}, hidden {arch['hidden']}, {arch['activation']}"
