"""Registry of continual-learning methods. Adding one: a file here plus one import line below."""

from hnet.registry import Registry

METHODS: Registry = Registry("method")

# One line per method module: importing it registers its methods.
from hnet.methods import (  # noqa: E402, F401
    baseline,
    ewc,
    hnet_method,
    joint,
    mas,
    replay,
    scratch,
    si,
)

__all__ = ["METHODS"]
