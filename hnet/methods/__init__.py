"""Registry of continual-learning methods. Adding one: a file here plus one import line below."""

from hnet.registry import Registry

METHODS: Registry = Registry("method")

# One line per method module: importing it registers its methods.
from hnet.methods import baseline, hnet_method  # noqa: E402, F401

__all__ = ["METHODS"]
