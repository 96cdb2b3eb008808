"""Registry of continual-learning methods. Adding one: a file here plus one import line below."""

from hnet.registry import Registry

METHODS: Registry = Registry("method")

from hnet.methods import hnet_method  # noqa: E402, F401  (registers "hnet")

__all__ = ["METHODS"]
