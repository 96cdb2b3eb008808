"""Continual-learning methods by name: ``METHODS``. Adding one: a file here plus one import line
below (and, for official hyperparameters, ``tuned/<name>.yaml``)."""

# One line per method module: importing it registers its methods.
from hnet.methods import (  # noqa: F401
    agem,
    derpp,
    dgr,
    er_ace,
    ewc,
    finetune,
    gdumb,
    hat,
    hnet,
    hnet_r,
    hnet_scratch,
    hnet_tir,
    icarl,
    joint,
    lwf,
    mas,
    packnet,
    replay,
    scratch,
    si,
    xdg,
)
from hnet.methods.common.base import METHODS

__all__ = ["METHODS"]
