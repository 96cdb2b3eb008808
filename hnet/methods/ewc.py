"""EWC and Online EWC: a quadratic penalty that keeps weights important to earlier tasks in place.

EWC (Kirkpatrick et al. 2017, PNAS) approximates the posterior of each finished task t by a
Gaussian around its solution θ*_t with the diagonal Fisher F_t as precision; one term per task:

    L = L_task + λ/2 · Σ_t Σ_i F_t,i (θ_i − θ*_t,i)²

Online EWC (Schwarz et al. 2018, "Progress & Compress") keeps one running Fisher F ← γ·F + F_t
and the latest solution θ* as anchor, penalty λ/2 · Σ_i γ F_i (θ_i − θ*_i)² (γ inside as in
Schwarz et al. and van de Ven's code; the same for γ = 1): O(|θ|) memory instead of O(T·|θ|).

The Fisher is the *expected* Fisher of the model's predictive distribution, as van de Ven,
Tuytelaars & Tolias 2022 compute it (their default ``fisher_labels='all'``, batch size 1):

    F_i = mean_x Σ_c p(c|x) · (∂ log p(c|x) / ∂θ_i)²

over the outputs the task was trained with (its head in CL1, the shared head in CL2, the heads of
all tasks seen so far in CL3); regression: likelihood N(f(x), 1), F_i = mean_x Σ_o (∂f_o/∂θ_i)².
Per-sample Jacobians via torch.func (vmap ∘ jacrev) in chunks of ≤ ``_BUDGET`` floats; cost per
task: 1 forward + C backward passes for each of ≤ ``fisher_samples`` samples. F is a *mean* over
samples, like theirs, so their λ values carry over and do not depend on ``fisher_samples``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, vmap

from hnet import rng
from hnet.errors import ConfigError
from hnet.methods.common.base import METHODS
from hnet.methods.common.baseline import Baseline
from hnet.methods.common.memory import tensor_bytes

_BUDGET = 2**25  # floats of per-sample gradients held at once (128 MB in float32)


def flat_params(net: nn.Module) -> Tensor:
    """All parameters as one vector (differentiable), in ``net.parameters()`` order."""
    return torch.cat([p.reshape(-1) for p in net.parameters()])


class _Outputs(nn.Module):
    """``Baseline.logits`` for one task as a module over the method's net, for torch.func."""

    def __init__(self, method: Baseline, task: int) -> None:
        super().__init__()
        self.net = method.net  # functional_call swaps the parameters of this very module
        self.fn = lambda x: method.logits(x, task, method.seen)

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)


def sample_mean(method: Baseline, task: int, n_max: int, per_sample: Callable) -> Tensor:
    """Mean of ``per_sample(f, params, x)`` (a dict like params) over ≤ ``n_max`` training inputs
    of ``task`` (a fixed random subset), as one flat vector in :func:`flat_params` order.
    ``f(params, x)`` gives the scenario's outputs for the single input ``x``.

    The net runs in eval mode: BatchNorm normalises with its running statistics (a batch of one
    has no batch statistics, and under vmap every sample is a batch of one) and dropout is off.
    Inputs are the stored images without augmentation."""
    model = _Outputs(method, task)
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def f(p: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(model, (p, buffers), (x[None],))[0]

    data = method.bench.tasks[task]
    gen = rng.generator(method.cfg["seed"], "importance-samples", task)
    idx = torch.randperm(data.n_train, generator=gen)[:n_max].to(data.y_train.device)
    n_par = sum(p.numel() for p in params.values())
    training = method.net.training
    method.net.eval()
    try:
        with torch.no_grad():
            width = model(data.inputs(data.x_train[idx[:1]])).shape[-1]
        chunk = max(1, _BUDGET // (n_par * width))
        total = torch.zeros(n_par, device=next(method.net.parameters()).device)
        for start in range(0, len(idx), chunk):
            x = data.inputs(data.x_train[idx[start : start + chunk]])  # not augmented
            per = vmap(lambda xi: per_sample(f, params, xi))(x)
            total += torch.cat([per[k].sum(0).reshape(-1) for k in params])
    finally:
        method.net.train(training)
    return total / len(idx)


def fisher_one(f: Callable, params: dict[str, Tensor], x: Tensor, regression: bool) -> dict:
    """Diagonal of the expected Fisher for one input (see the module docstring)."""
    if regression:
        return {k: j.pow(2).sum(0) for k, j in jacrev(f)(params, x).items()}

    def logp(p: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        lp = torch.log_softmax(f(p, x), -1)
        return lp, lp.detach()

    jac, lp = jacrev(logp, has_aux=True)(params)
    return {k: torch.tensordot(lp.exp(), j.pow(2), dims=1) for k, j in jac.items()}


@METHODS.register("ewc")
class EWC(Baseline):
    summary = "Elastic Weight Consolidation: Fisher-weighted penalty per task (Kirkpatrick 2017)"
    online: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {
        "lambda": 100.0,  # penalty strength λ (tuned per benchmark: tuned/ewc.yaml)
        "fisher_samples": 1000,  # training inputs per task for the Fisher estimate (a mean)
    }

    # Tuned λ per benchmark and scenario: tuned/ewc.yaml (van de Ven et al. 2022, whose Fisher
    # normalisation is ours).
    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        hp = cfg[cls.name]
        if hp["lambda"] < 0:
            raise ConfigError(f"{cls.name}.lambda must be ≥ 0, got {hp['lambda']!r}.")
        if hp["fisher_samples"] < 1:
            raise ConfigError(f"{cls.name}.fisher_samples must be ≥ 1, got {hp['fisher_samples']}.")
        if "gamma" in hp and not 0 <= hp["gamma"] <= 1:
            raise ConfigError(f"{cls.name}.gamma must be in [0, 1], got {hp['gamma']!r}.")

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        self.fisher: Tensor | None = None  # (T, P): one row per penalty term
        self.anchor: Tensor | None = None  # (T, P): θ* of each row

    def penalty(self) -> Tensor | None:
        if self.fisher is None or self.hp["lambda"] == 0:
            return None
        scale = self.hp["lambda"] / 2 * (self.hp["gamma"] if self.online else 1.0)
        return scale * (self.fisher * (flat_params(self.net) - self.anchor).pow(2)).sum()

    def end_task(self, task: int) -> None:
        regression = self.bench.kind == "regression"
        new = sample_mean(
            self, task, self.hp["fisher_samples"],
            lambda f, p, x: fisher_one(f, p, x, regression),
        )[None]  # fmt: skip
        theta = flat_params(self.net).detach()[None]
        if self.fisher is None:
            self.fisher, self.anchor = new, theta
        elif self.online:
            self.fisher, self.anchor = self.hp["gamma"] * self.fisher + new, theta
        else:
            self.fisher = torch.cat([self.fisher, new])
            self.anchor = torch.cat([self.anchor, theta])

    def extra_state(self) -> dict[str, Any]:
        return {"fisher": self.fisher, "anchor": self.anchor}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.fisher, self.anchor = state["fisher"], state["anchor"]

    def memory_bytes(self) -> dict[str, int]:
        """The Fisher rows and their anchors θ*: one pair per learned task (EWC), one running
        pair (Online EWC)."""
        return {
            "fisher": tensor_bytes(self.fisher),
            "anchors": tensor_bytes(self.anchor),
            **super().memory_bytes(),
        }


@METHODS.register("online_ewc")
class OnlineEWC(EWC):
    summary = "Online EWC: one running Fisher and anchor (Schwarz et al. 2018)"
    online = True
    tuned_as = "ewc"
    defaults: ClassVar[dict[str, Any]] = {**EWC.defaults, "gamma": 1.0}  # γ: decay of old F
