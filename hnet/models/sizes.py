"""Hypernetwork sizes: a grid axis.

A size is either a named preset (the official architectures of docs/method.md plus fast ones for
the offline benchmarks) or a requested compression ratio written ``cr<ratio>`` (``cr0.1``,
``cr0.5``, ``cr1.0``). ``official`` means the benchmark's own default preset.

For a ratio, the benchmark's default preset is the template (embedding sizes, hidden layers,
activation) and :func:`solve_ratio` picks the chunk size, scaling the hidden widths only if the
chunk size alone cannot land within ±5 % of the requested ratio.

Compression ratio = trainable hypernetwork parameters (incl. task and chunk embeddings)
/ target-network weights (incl. all heads).
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

from hnet.errors import ConfigError
from hnet.registry import Registry

SIZES: Registry[dict[str, Any]] = Registry("size preset")


def chunked(
    chunk_size: int, chunk_emb: int, task_emb: int, hidden: list[int], activation: str = "relu"
) -> dict[str, Any]:
    return dict(
        chunked=True,
        chunk_size=chunk_size,
        chunk_emb=chunk_emb,
        task_emb=task_emb,
        hidden=hidden,
        activation=activation,
    )


def full(task_emb: int, hidden: list[int], activation: str = "relu") -> dict[str, Any]:
    return dict(
        chunked=False,
        chunk_size=None,
        chunk_emb=None,
        task_emb=task_emb,
        hidden=hidden,
        activation=activation,
    )


# name → architecture; adding a preset is one line. Official ones: docs/method.md.
SIZES.add("sm", chunked(42000, 96, 96, [10, 10]))  # Split MNIST
SIZES.add("pm10", chunked(78000, 8, 24, [25, 25], "elu"))  # Permuted MNIST-10
SIZES.add("pm100", chunked(7500, 12, 128, [200, 250, 350]))  # Permuted MNIST-100
SIZES.add("cifar_resnet", chunked(7000, 32, 32, []))  # Split CIFAR-10/100, ResNet-32
SIZES.add("cifar_zenke", chunked(5500, 80, 48, [100, 150, 200]))  # Split CIFAR, ZenkeNet
SIZES.add("digits", chunked(300, 16, 16, [20, 20]))  # fast default for the digits benchmarks
# Decoder hypernetworks of the replay model (HNET+R, HNET+TIR): method key `dec_size`.
SIZES.add("sm_dec", chunked(50000, 96, 96, [10, 10], "elu"))  # Split MNIST replay decoder
SIZES.add("pm10_dec", chunked(85000, 8, 24, [25, 25], "elu"))  # PM-10 replay decoder
SIZES.add("digits_dec", chunked(2000, 16, 16, [20, 20], "elu"))  # fast, digits benchmarks
SIZES.add("toy", full(2, [10, 10]))  # toy regression
SIZES.add("full", full(32, [50, 50]))  # an unchunked HMLP

ARCH_KEYS = ("chunked", "chunk_size", "chunk_emb", "task_emb", "hidden", "activation")
# The size grammar (one home; the torch-free study grid asks here too): "official", a preset
# name, or cr<ratio>; methods without a hypernetwork have the size NO_SIZE, except the rehearsal
# methods, whose size is their buffer: buf<buffer.size> (the study's buffer axis).
RATIO = re.compile(r"^cr(\d+(?:\.\d+)?)$")
NO_SIZE = "none"
BUFFER = re.compile(r"^buf(\d+)$")


def buffer_label(size: int) -> str:
    """The size of a rehearsal method's cell and report group: ``buf<buffer.size>``."""
    return f"buf{int(size)}"


TOLERANCE = 0.05


def mlp_params(dims: list[int]) -> int:
    return sum(a * b + b for a, b in itertools.pairwise(dims))


def count_params(arch: dict[str, Any], target_numel: int, n_tasks: int) -> int:
    """Parameters of the hypernetwork ``arch`` would build, without building it."""
    te = arch["task_emb"]
    if not arch["chunked"]:
        return mlp_params([te, *arch["hidden"], target_numel]) + n_tasks * te
    cs, ce = arch["chunk_size"], arch["chunk_emb"]
    n_chunks = math.ceil(target_numel / cs)
    return mlp_params([te + ce, *arch["hidden"], cs]) + n_chunks * ce + n_tasks * te


def is_valid_size(name: str) -> bool:
    return name == "official" or name in SIZES or RATIO.match(name) is not None


def solve_ratio(ratio: float, template: dict[str, Any], target_numel: int, n_tasks: int) -> dict:
    """Chunked architecture whose compression ratio is within ±5 % of ``ratio``."""
    import numpy as np

    base = dict(template)
    if not base["chunked"]:
        base.update(chunked=True, chunk_emb=base["task_emb"])
    best: tuple[float, dict] | None = None
    sizes = np.arange(1, target_numel + 1, dtype=np.int64)
    # Chunk size first; then smaller/larger hidden widths; then smaller embeddings.
    for emb_scale in (1.0, 0.5, 0.25):
        for scale in (1.0, 0.5, 2.0, 0.25, 4.0, 0.1, 10.0):
            hidden = [max(1, round(h * scale)) for h in base["hidden"]]
            te = max(2, round(base["task_emb"] * emb_scale))
            ce = max(2, round(base["chunk_emb"] * emb_scale))
            first = [te + ce, *hidden]
            fixed = mlp_params(first) + n_tasks * te
            chunks = np.ceil(target_numel / sizes).astype(np.int64)
            total = fixed + (first[-1] + 1) * sizes + chunks * ce
            err = np.abs(total / target_numel - ratio) / ratio
            i = int(np.argmin(err))
            if best is None or err[i] < best[0]:
                cand = dict(
                    base, hidden=hidden, task_emb=te, chunk_emb=ce, chunk_size=int(sizes[i])
                )
                best = (float(err[i]), cand)
            if best[0] <= TOLERANCE / 2:
                break
        if best[0] <= TOLERANCE / 2:
            break
    assert best is not None
    if best[0] > TOLERANCE:
        got = count_params(best[1], target_numel, n_tasks) / target_numel
        raise ConfigError(
            f"Size 'cr{ratio:g}': no chunked hypernetwork based on this benchmark's default preset "
            f"lands within ±5 % of compression ratio {ratio:g} for a target of {target_numel} "
            f"weights (closest: {got:.3f}). Ask for a ratio closer to {got:.2f}, or pick a preset "
            f"({', '.join(SIZES.names())})."
        )
    return best[1]


def resolve_size(
    name: str,
    default_preset: str,
    target_numel: int,
    n_tasks: int,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Size name → architecture dict (``ARCH_KEYS``), with ``--set hnet_arch.*`` overrides."""
    if name == "official":
        name = default_preset
    m = RATIO.match(name)
    if m:
        arch = solve_ratio(float(m.group(1)), SIZES.get(default_preset), target_numel, n_tasks)
    else:
        arch = dict(SIZES.get(name))
    for key, value in (overrides or {}).items():
        if key not in ARCH_KEYS:
            raise ConfigError(f"Unknown key hnet_arch.{key}; valid keys: {', '.join(ARCH_KEYS)}.")
        arch[key] = value
    if arch["chunked"] and not arch.get("chunk_size"):
        raise ConfigError("hnet_arch.chunked is true but hnet_arch.chunk_size is not set.")
    arch["hidden"] = list(arch["hidden"])
    return arch
