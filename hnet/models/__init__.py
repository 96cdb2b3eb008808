"""Target networks, hypernetworks and hypernetwork size presets."""

from hnet.models.hypernet import ChunkedHypernet, FullHypernet, HyperNetwork, build_hypernet
from hnet.models.sizes import SIZES, count_params, resolve_size
from hnet.models.target import MLP, build_target, functional_forward, num_weights

__all__ = [
    "MLP",
    "SIZES",
    "ChunkedHypernet",
    "FullHypernet",
    "HyperNetwork",
    "build_hypernet",
    "build_target",
    "count_params",
    "functional_forward",
    "num_weights",
    "resolve_size",
]
