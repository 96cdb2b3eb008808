"""Target networks, hypernetworks and hypernetwork size presets."""

from hnet.models.batchnorm import get_stats, init_stats, num_stats, set_stats
from hnet.models.hypernet import ChunkedHypernet, FullHypernet, HyperNetwork, build_hypernet
from hnet.models.resnet import ResNet32
from hnet.models.sizes import SIZES, count_params, resolve_size
from hnet.models.target import MLP, build_target, functional_forward, num_weights
from hnet.models.zenke import ZenkeNet

__all__ = [
    "MLP",
    "SIZES",
    "ChunkedHypernet",
    "FullHypernet",
    "HyperNetwork",
    "ResNet32",
    "ZenkeNet",
    "build_hypernet",
    "build_target",
    "count_params",
    "functional_forward",
    "get_stats",
    "init_stats",
    "num_stats",
    "num_weights",
    "resolve_size",
    "set_stats",
]
