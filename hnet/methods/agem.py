"""A-GEM (Chaudhry, Ranzato, Rohrbach & Elhoseiny 2019, "Efficient Lifelong Learning with
A-GEM"): the gradient of the current batch is projected so it does not increase the loss on a
batch of stored samples of earlier tasks.

Why this baseline: it uses its memory as a constraint on the direction of the step rather than
as extra training data, the other way a small buffer can defend against forgetting.

The rule (van de Ven's continual-learning ``models/classifier.py`` ``train_a_batch`` with
``use_replay='inequality'``; Mammoth's ``models/agem.py`` is the same without ε): g is the
gradient of the current batch's loss, g_ref the gradient of the loss on a batch drawn from the
buffer's samples of earlier tasks; if g·g_ref < 0 the step uses g̃ = g − (g·g_ref)/(g_ref·g_ref +
ε)·g_ref, for which g̃·g_ref ≈ 0, else g itself. Written without a branch (g·g_ref clamped at 0),
so a step reads nothing back from the device. g_ref is transient: it is recomputed every step
from the buffer and never kept, so the method's memory is its buffer (samples, labels, task
ids).

Scenarios: CL1–CL3. The reference loss is the replay loss in each scenario's label space
(:func:`hnet.methods.replay.mixed_loss`: a sample's own head in CL1, the shared head in CL2, the
active classes of all tasks seen so far in CL3); nothing in the rule needs task identity at
test time. The buffer is the shared reservoir over the stream of training batches; the
reference batch is drawn from its samples of earlier tasks only (the references fill the buffer
at the end of each task, so it never holds the current one; docs/fidelity.md).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from hnet.errors import ConfigError
from hnet.methods.common.base import METHODS
from hnet.methods.common.rehearsal import Rehearsal, check_rehearsal
from hnet.methods.replay import mixed_loss


def project(g: Tensor, g_ref: Tensor, eps: float) -> Tensor:
    """A-GEM's projection of ``g`` against ``g_ref`` (flat vectors): unchanged when they agree,
    else with the component along ``g_ref`` removed."""
    dot = torch.dot(g, g_ref).clamp(max=0.0)
    return g - dot / (torch.dot(g_ref, g_ref) + eps) * g_ref


def grads(loss: Tensor, params: list[Tensor]) -> list[Tensor | None]:
    """d loss / d params; None for parameters the loss does not reach (another task's head)."""
    return list(torch.autograd.grad(loss, params, allow_unused=True))


def flatten(gs: list[Tensor | None], params: list[Tensor]) -> Tensor:
    """Gradients as one vector, zeros where a parameter has none."""
    return torch.cat(
        [
            (torch.zeros_like(p) if g is None else g).reshape(-1)
            for g, p in zip(gs, params, strict=True)
        ]
    )


@METHODS.register("agem")
class AGEM(Rehearsal):
    summary = (
        "A-GEM: current gradient projected so the loss on stored earlier samples does not rise"
    )
    defaults: ClassVar[dict[str, Any]] = {
        "replay_batch_size": None,  # None = train.batch_size (van de Ven: batch_replay = batch)
        "eps": 1e-7,  # van de Ven's eps_agem (numerical stability); Mammoth: 0
        "project": True,  # False: the plain current gradient (the mechanism switched off)
    }

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        check_rehearsal(cfg, "agem")
        hp = cfg["agem"]
        if not isinstance(hp["eps"], (int, float)) or hp["eps"] < 0:
            raise ConfigError(f"agem.eps must be a number ≥ 0, got {hp['eps']!r}.")
        if not isinstance(hp["project"], bool):
            raise ConfigError(f"agem.project must be true or false, got {hp['project']!r}.")

    def train_step(self, task: int, x: Tensor, y: Tensor) -> Tensor:
        self.net.train()
        self.use_task(task)
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_on(x, y, task)
        ref = self.buffer.sample(self.replay_bs, before_task=task) if task > 0 else None
        if ref is None or not self.hp["project"]:
            loss.backward()
        else:
            params = [p for p in self.net.parameters() if p.requires_grad]
            g = grads(loss, params)
            xr, yr, tr, _ = ref
            g_ref = grads(mixed_loss(self, xr, yr, tr), params)
            flat = project(flatten(g, params), flatten(g_ref, params), self.hp["eps"])
            # a parameter neither loss reaches keeps no gradient, so Adam leaves it alone
            reached = [a is not None or b is not None for a, b in zip(g, g_ref, strict=True)]
            self.write_grad(params, flat, reached)
        self.opt.step()
        self.remember(task, x, y)
        return loss.detach()

    @staticmethod
    def write_grad(params: list[Tensor], flat: Tensor, reached: list[bool]) -> None:
        start = 0
        for p, r in zip(params, reached, strict=True):
            n = p.numel()
            p.grad = flat[start : start + n].view_as(p).clone() if r else None
            start += n
