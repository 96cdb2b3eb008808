"""One seed → independent random streams (hnet/rng.py)."""

from __future__ import annotations

import pytest
import torch

from hnet import rng


def test_same_key_same_stream_different_keys_differ():
    a = torch.randperm(100, generator=rng.generator(3, "data-order"))
    b = torch.randperm(100, generator=rng.generator(3, "data-order"))
    assert torch.equal(a, b)
    others = [
        rng.generator(4, "data-order"),  # another seed
        rng.generator(3, "permutations"),  # another purpose
        rng.generator(3, "data-order", 1),  # another task
    ]
    for g in others:
        assert not torch.equal(a, torch.randperm(100, generator=g))


def test_derived_seeds_are_distinct_and_in_range():
    seeds = {rng.derive(s, p, t) for s in range(20) for p in ("a", "b") for t in range(20)}
    assert len(seeds) == 20 * 2 * 20
    assert all(0 <= s < 2**63 for s in seeds)
    assert rng.derive(rng.MAX_SEED, "x") >= 0


def test_seed_globals_is_reproducible():
    rng.seed_globals(7)
    a = torch.rand(3)
    rng.seed_globals(7)
    assert torch.equal(a, torch.rand(3))


@pytest.mark.parametrize("bad", [-1, 1.5, None, True])
def test_bad_keys_are_refused(bad):
    with pytest.raises(ValueError, match="random stream keys"):
        rng.derive(0, bad)
