"""The output regularizer that protects earlier tasks (METHOD.md §2).

While learning task T it penalises changes of the hypernetwork's output for earlier embeddings:

    R = 1/|S| · Σ_{t∈S} ‖ f_h(e_t, Θ*) − f_h(e_t, Θ + ΔΘ) ‖²        (S ⊆ {1..T−1})

``Θ*`` is Θ before task T. Targets ``f_h(e_t, Θ*)`` are stored once per task (``stored``:
memory O(T·N)) or recomputed every step from a snapshot of Θ* (``online``: constant memory, one
extra no-grad forward). All selected tasks go through ONE batched hypernetwork forward;
:meth:`OutputRegularizer.loss_loop` is the per-task reference kept for tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.func import functional_call

from hnet.models.hypernet import HyperNetwork

TARGET_MODES = ("stored", "online")


class OutputRegularizer:
    def __init__(
        self,
        mode: str = "stored",
        n_sample: int = 0,
        head_mask: Callable[[int], Tensor] | None = None,
    ) -> None:
        """``n_sample`` > 0 regularizes a fresh random subset of that many previous tasks per step;
        ``head_mask(t)`` (optional) gives a bool mask over the flat weights that hides the heads
        task ``t`` does not use."""
        if mode not in TARGET_MODES:
            raise ValueError(f"regularizer targets must be one of {TARGET_MODES}, got {mode!r}")
        self.mode, self.n_sample, self.head_mask = mode, n_sample, head_mask
        self.n_prev = 0
        self.targets: Tensor | None = None  # stored mode: (n_prev, N)
        self.snapshot: dict[str, Tensor] | None = None  # online mode: Θ*
        self.masks: Tensor | None = None  # (n_prev, N) float, when head masking is on

    # -- task boundary ---------------------------------------------------------------------------
    @torch.no_grad()
    def begin_task(self, hnet: HyperNetwork, task: int) -> None:
        """Freeze Θ* (or its outputs) for the tasks before ``task``."""
        self.n_prev = task
        self.targets = self.snapshot = self.masks = None
        if task == 0:
            return
        if self.mode == "stored":
            self.targets = hnet(hnet.embeddings(range(task))).detach().clone()
        else:
            self.snapshot = {n: p.detach().clone() for n, p in hnet.theta().items()}
        if self.head_mask is not None:
            device = next(hnet.parameters()).device
            self.masks = torch.stack([self.head_mask(t) for t in range(task)]).to(device).float()

    def state(self) -> dict[str, Tensor]:
        """Tensors a checkpoint must keep to rebuild this regularizer exactly."""
        out: dict[str, Tensor] = {}
        if self.targets is not None:
            out["targets"] = self.targets
        for n, t in (self.snapshot or {}).items():
            out[f"snapshot.{n}"] = t
        return out

    # -- per step --------------------------------------------------------------------------------
    def select(self, generator: torch.Generator | None = None) -> Tensor:
        """Indices of the previous tasks regularized in this step."""
        if 0 < self.n_sample < self.n_prev:
            return torch.randperm(self.n_prev, generator=generator)[: self.n_sample].sort().values
        return torch.arange(self.n_prev)

    def _targets(self, hnet: HyperNetwork, tasks: Tensor, embs: Tensor) -> Tensor:
        if self.targets is not None:
            return self.targets[tasks.to(self.targets.device)]
        with torch.no_grad():
            return functional_call(hnet, self.snapshot, (embs,))

    @staticmethod
    def _forward(hnet: HyperNetwork, embs: Tensor, delta: dict[str, Tensor] | None) -> Tensor:
        if not delta:
            return hnet(embs)
        params = {n: p + delta[n] if n in delta else p for n, p in hnet.theta().items()}
        return functional_call(hnet, params, (embs,))

    def loss(self, hnet: HyperNetwork, tasks: Tensor | None = None,
             delta: dict[str, Tensor] | None = None) -> Tensor:
        """Batched regularizer: one hypernetwork forward for all ``tasks`` (default: all
        previous). ``delta`` is the detached lookahead step ΔΘ added to Θ."""
        tasks = self.select() if tasks is None else tasks
        embs = hnet.embeddings(tasks).detach()
        diff = self._forward(hnet, embs, delta) - self._targets(hnet, tasks, embs)
        sq = diff.pow(2)
        if self.masks is not None:
            sq = sq * self.masks[tasks.to(self.masks.device)]
        return sq.sum() / len(tasks)

    def loss_loop(self, hnet: HyperNetwork, tasks: Tensor | None = None,
                  delta: dict[str, Tensor] | None = None) -> Tensor:
        """Reference: the same value as :meth:`loss`, one forward per task (tests and bench)."""
        tasks = self.select() if tasks is None else tasks
        total = 0.0
        for t in tasks.tolist():
            idx = torch.tensor([t])
            emb = hnet.embeddings(idx).detach()
            sq = (self._forward(hnet, emb, delta) - self._targets(hnet, idx, emb)).pow(2)
            if self.masks is not None:
                sq = sq * self.masks[t]
            total = total + sq.sum()
        return total / len(tasks)


@torch.no_grad()
def adam_lookahead(optimizer: torch.optim.Adam, params: dict[str, Tensor]) -> dict[str, Tensor]:
    """ΔΘ the Adam ``optimizer`` would apply for the current ``.grad``s, without touching its state.

    Mirrors ``torch.optim.Adam`` (no weight decay, no amsgrad): the moments are advanced on
    copies, bias-corrected, and turned into the step. Parameters without a gradient get no entry.
    """
    group = optimizer.param_groups[0]
    lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
    if group.get("weight_decay", 0) or group.get("amsgrad", False):
        raise ValueError("lookahead supports plain Adam only (no weight decay, no amsgrad)")
    delta = {}
    for name, p in params.items():
        if p.grad is None:
            continue
        st = optimizer.state.get(p, {})
        step = float(st["step"]) + 1 if "step" in st else 1.0
        m = st["exp_avg"] * b1 + (1 - b1) * p.grad if "exp_avg" in st else (1 - b1) * p.grad
        v = (st["exp_avg_sq"] * b2 + (1 - b2) * p.grad.square() if "exp_avg_sq" in st
             else (1 - b2) * p.grad.square())
        denom = (v.sqrt() / (1 - b2**step) ** 0.5).add_(eps)
        delta[name] = -(lr / (1 - b1**step)) * m / denom
    return delta
