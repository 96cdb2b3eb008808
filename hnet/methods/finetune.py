"""Fine-tuning: the baseline network trained on each task in turn, with nothing to protect
earlier tasks (the lower bound of every comparison; :mod:`hnet.methods.common.baseline`)."""

from __future__ import annotations

from typing import ClassVar

from hnet.methods.common.base import METHODS
from hnet.methods.common.baseline import Baseline


@METHODS.register("finetune")
class Finetune(Baseline):
    """Plain sequential training: no protection against forgetting (the lower bound)."""

    summary = "sequential training, no protection (lower bound)"
    packable: ClassVar[bool] = True  # hnet.methods.common.packed.PackedFinetune
