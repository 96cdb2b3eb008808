"""Checkpoints written before the hypernetwork's output layer was stored transposed.

:class:`hnet.models.hypernet.WideLinear` keeps the output layer's weight as ``(in, out)``; older
checkpoints hold it as ``nn.Linear``'s ``(out, in)``. The module transposes its own weight on
load; this puts the state kept *about* that weight elsewhere into the same layout, so a run
checkpointed by an older version resumes exactly: Adam's moments of the weight, and the
regularizer's frozen copy of it (``W`` of stored Gram features, ``theta.<name>`` of online
targets).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from hnet.models.hypernet import HyperNetwork, output_layer_transposed


def upgrade_checkpoint(
    hnet: HyperNetwork,
    hnet_state: dict[str, Tensor],
    theta_opt: dict[str, Any] | None,
    frozen: dict[str, Tensor],
    prefix: str = "",
) -> tuple[dict[str, Any] | None, dict[str, Tensor]]:
    """``(theta optimizer state_dict, regularizer frozen state)`` in the current layout;
    unchanged unless ``hnet_state`` was written with the old one. The optimizer is the one over
    ``hnet.theta()`` in that order; ``prefix`` is the hypernetwork's own in ``hnet_state``
    (a module's state_dict that contains it)."""
    if not output_layer_transposed(hnet, hnet_state, prefix):
        return theta_opt, frozen
    name = hnet.output_layer()[0]
    if theta_opt is not None:
        index = list(hnet.theta()).index(name)
        state = dict(theta_opt["state"])
        if index in state:
            state[index] = {
                k: v.T.contiguous() if k in ("exp_avg", "exp_avg_sq") else v
                for k, v in state[index].items()
            }
        theta_opt = {**theta_opt, "state": state}
    frozen = {k: v.T.contiguous() if k in ("W", f"theta.{name}") else v for k, v in frozen.items()}
    return theta_opt, frozen
