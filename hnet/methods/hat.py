"""HAT, hard attention to the task (Serra, Surís, Miron & Karatzoglou 2018, ICML), following the
authors' code (joansj/hat, ``src/approaches/hat.py`` and ``src/networks/mlp_hat.py``).

Every layer of hidden units l has a learned task embedding e_t^l; its gate is the attention
a_t^l = σ(s · e_t^l), multiplied onto the units' outputs (:mod:`hnet.methods.common.units`).

* **Annealing**: within each epoch of the task, s rises linearly from 1/s_max to s_max,
  s = (s_max − 1/s_max) · b/B + 1/s_max for batch b of B; tests use s = s_max (near-binary
  gates).
* **Attention regularizer**: c · Σ_l Σ_i a_t,i (1 − a_<t,i) / Σ_l Σ_i (1 − a_<t,i), where a_<t is
  the cumulative mask max over earlier tasks of σ(s_max · e) (before the first task: the mean
  of a_t), so a task spends few units not already used.
* **Gradient compensation**: the gradient of each weight is multiplied by 1 − min(a_<t of the
  unit it writes, a_<t of the unit it reads) (biases and BatchNorm's γ/β: of their unit), so
  units fully used by earlier tasks no longer move; the embedding gradients are rescaled by
  s_max/s · (cosh(s·e) + 1)/(cosh(e) + 1) (s·e clamped to ±50) and embeddings clamped to ±6
  after each step; gradients are clipped to norm ``clipgrad``.
* A fresh optimizer per task (the authors' ``train`` builds one); output heads are per task and
  ungated. BatchNorm's running statistics are kept per task.

Differences from the authors' code (docs/fidelity.md): Adam with the job's learning rate
instead of SGD with lr 0.05 and a validation-driven decay and early stopping; no dropout in the
MLP; a fixed step budget instead of epochs to convergence.

Scenarios: CL1 only; the attention mask is chosen by task identity, undefined without it.
Memory: the embeddings of the tasks seen (``embeddings``) and the cumulative mask a_<t
(``masks``), float32, plus per-task BatchNorm statistics.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor

from hnet import rng
from hnet.errors import ConfigError
from hnet.methods.common.base import METHODS
from hnet.methods.common.isolation import FLOAT_BYTES, Isolation
from hnet.methods.common.optim import adam
from hnet.methods.common.units import Gates, unit_layout

THRES_COSH = 50.0  # the authors' clamp of s·e in the compensation (cosh overflow)


@METHODS.register("hat")
class HAT(Isolation):
    """Hard attention to the task: learned, annealed per-task unit masks with gradient
    compensation; CL1 only (the mask is chosen by task identity, undefined without it)."""

    summary = "HAT: learned hard attention masks per task (Serra et al. 2018)"
    defaults: ClassVar[dict[str, Any]] = {
        "smax": 400.0,  # s_max of the annealed gate σ(s·e)
        "c": 0.75,  # strength of the attention regularizer (the authors' lamb)
        "thres_emb": 6.0,  # embeddings clamped to ±thres_emb after each step
        "clipgrad": 10000.0,  # gradient norm clip
        "anneal_steps": 0,  # steps of one annealing cycle; 0 = one epoch of the task
        "reset_optimizer": True,
    }

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        hp = cfg[cls.name]
        if hp["smax"] < 1:
            raise ConfigError(
                f"hat.smax must be ≥ 1 (s anneals from 1/smax to smax), got {hp['smax']!r}."
            )
        if hp["c"] < 0:
            raise ConfigError(f"hat.c must be ≥ 0, got {hp['c']!r}.")
        for key in ("thres_emb", "clipgrad"):
            if hp[key] <= 0:
                raise ConfigError(f"hat.{key} must be > 0, got {hp[key]!r}.")
        if hp["anneal_steps"] < 0:
            raise ConfigError(
                f"hat.anneal_steps must be ≥ 0 (0 = one epoch), got {hp['anneal_steps']!r}."
            )

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        self.layout = unit_layout(self.net)
        # e^l: (T, units) per layer, N(0, 1) like the authors' nn.Embedding
        gen = rng.generator(cfg["seed"], "hat-embeddings")
        self.emb = [
            torch.nn.Parameter(torch.randn(bench.n_tasks, n, generator=gen).to(device))
            for n in self.layout.sizes
        ]
        self.mask_pre: list[Tensor] | None = None  # a_<t, the cumulative mask
        self._s = self.hp["smax"]  # s of the current step (set by train_step)
        self.hooks = Gates(self.net, self.layout)
        self.opt = self.build_optimizer()

    def build_optimizer(self) -> torch.optim.Optimizer:
        params = list(self.net.parameters()) + list(getattr(self, "emb", []))
        return adam(params, self.cfg["train"]["lr"], self.cfg)

    # -- gates ------------------------------------------------------------------------------------
    def attention(self, task: int, s: float) -> list[Tensor]:
        return [torch.sigmoid(s * e[task]) for e in self.emb]

    def s_now(self, task: int) -> float:
        """s for the current step: linear from 1/s_max to s_max over each annealing cycle."""
        smax = self.hp["smax"]
        cycle = self.hp["anneal_steps"] or math.ceil(
            self.bench.tasks[task].n_train / self.cfg["train"]["batch_size"]
        )
        b = self.step % cycle
        return (smax - 1 / smax) * b / cycle + 1 / smax

    def attention_reg(self, masks: list[Tensor]) -> Tensor:
        if self.mask_pre is None:
            num = sum(m.sum() for m in masks)
            den = sum(m.numel() for m in masks)
        else:
            num = sum((m * (1 - mp)).sum() for m, mp in zip(masks, self.mask_pre, strict=True))
            den = sum((1 - mp).sum() for mp in self.mask_pre)
        return num / den

    # -- the step -------------------------------------------------------------------------------
    def loss_on(self, x: Tensor, y: Tensor, task: int, params=None) -> Tensor:
        s = self._s
        masks = self.attention(task, s)
        self.hooks.set(masks)
        return super().loss_on(x, y, task, params) + self.hp["c"] * self.attention_reg(masks)

    def train_step(self, task: int, x: Tensor, y: Tensor) -> Tensor:
        self._s = self.s_now(task)
        return super().train_step(task, x, y)

    @torch.no_grad()
    def after_loss_backward(self) -> None:
        task, s, smax = self.seen - 1, self._s, self.hp["smax"]
        if self.mask_pre is not None:  # units used by earlier tasks keep their weights
            for name, p in self.net.named_parameters():
                if p.grad is None:
                    continue
                m = self.layout.weight_mask(name, p.shape, self.mask_pre)
                if m is not None:
                    p.grad.mul_(1 - m)
        for e in self.emb:  # undo the flattening of σ(s·e) for small s
            if e.grad is None:
                continue
            row = e.data[task]
            num = torch.cosh(torch.clamp(s * row, -THRES_COSH, THRES_COSH)) + 1
            den = torch.cosh(row) + 1
            e.grad[task].mul_(smax / s * num / den)
        torch.nn.utils.clip_grad_norm_(self.opt.param_groups[0]["params"], self.hp["clipgrad"])

    @torch.no_grad()
    def after_step(self, task: int) -> None:
        for e in self.emb:
            e.clamp_(-self.hp["thres_emb"], self.hp["thres_emb"])

    @torch.no_grad()
    def end_task(self, task: int) -> None:
        mask = self.attention(task, self.hp["smax"])
        if self.mask_pre is None:
            self.mask_pre = [m.clone() for m in mask]
        else:
            self.mask_pre = [torch.maximum(a, b) for a, b in zip(self.mask_pre, mask, strict=True)]

    @torch.no_grad()
    def task_outputs(self, x: Tensor, task: int) -> Tensor:
        self.hooks.set(self.attention(task, self.hp["smax"]))
        return super().task_outputs(x, task)

    # -- accounting and checkpoints --------------------------------------------------------------
    def memory_bytes(self) -> dict[str, int]:
        units = sum(self.layout.sizes)
        masks = 0 if self.mask_pre is None else units * FLOAT_BYTES
        return {"embeddings": self.seen * units * FLOAT_BYTES, "masks": masks, **self.bn_bytes()}

    def extra_state(self) -> dict[str, Any]:
        return {
            **super().extra_state(),
            "emb": [e.detach().clone() for e in self.emb],
            "mask_pre": self.mask_pre,
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        with torch.no_grad():
            for e, saved in zip(self.emb, state["emb"], strict=True):
                e.copy_(saved)
        self.mask_pre = state["mask_pre"]
