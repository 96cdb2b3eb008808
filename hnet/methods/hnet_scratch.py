"""A hypernetwork trained from scratch on every task: the paper's control for forward transfer.

Why: von Oswald et al. (2020) measure forward transfer on Split CIFAR-10/100 against "a
hypernetwork of the same size trained on each task alone from scratch", so the comparison
isolates what learning the earlier tasks does, with the parameterisation held fixed.
``transfer_vs_hnet_scratch`` = mean_j (R[j, j] − R_hnet_scratch[j, j]) is that number; the
plain-network control ``scratch`` (``transfer_vs_scratch``) mixes the parameterisation into it.

For every task a fresh hypernetwork of the same architecture and size (the study's ``size``
axis, so ``sized``) and a fresh Adam are trained on that task alone, with no regularizer (β and
the other regularizer keys of the shared HNET section do nothing here). Task 0 keeps the
hypernetwork built at construction, from the job's global RNG as ``hnet``'s, so on the first
task the two methods coincide and transfer on it is exactly 0; from task 1 on, ``begin_task``
re-initialises it in place from a generator seeded by (seed, task), deterministic and
independent of what ran before.

After each task the method keeps what evaluating that task later needs, whichever is smaller:
the task's generated target weights (N numbers, plus a chunked hypernetwork's padding) or the
hypernetwork's Θ and the task's embedding (a compressive hypernetwork is smaller than its
target). Both are exact: a kept task is evaluated with the same computation on the same numbers
as right after it was learned. A target with BatchNorm keeps one set of running statistics per
task, as ``hnet`` does; each set is only ever updated by its own task's hypernetwork.

Scenarios: CL1 only. The control answers "how well is task j learned alone?", with the task
given. In CL2/CL3 a set of independent hypernetworks would need a task-inference rule of its own
to pick one at test time (an ensemble with entropy-based selection is a different model, not a
control), and hnet's diagonal there includes task inference, so "the same task trained alone"
has no single counterpart.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from hnet import rng
from hnet.methods.common.base import METHODS, Method
from hnet.methods.common.memory import tensor_bytes
from hnet.methods.common.optim import adam
from hnet.methods.hnet import HNET, StepParams


@METHODS.register("hnet_scratch")
class HNETScratch(HNET):
    summary = "fresh hypernetwork of the same size per task (the paper's transfer control)"
    scenarios = ("cl1",)
    sized: ClassVar[bool] = True
    packable: ClassVar[bool] = False  # no trainer in hnet.methods.common.packed
    tuned_as = "hnet"  # same section keys as hnet; only emb_lr has an effect here

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        # per finished task: {"weights": (N + padding,)} or {"theta": {name: tensor}, "emb": (d,)}
        self.kept: list[dict[str, Any]] = []

    # -- training --------------------------------------------------------------------------------
    def begin_task(self, task: int) -> None:
        Method.begin_task(self, task)  # not HNET's: no regularization targets to freeze
        if task > 0:
            with torch.random.fork_rng(devices=[]):  # leaves the global RNG stream untouched
                torch.manual_seed(rng.derive(self.cfg["seed"], "hnet-scratch-init", task))
                self.hnet.reset_parameters()  # the draws of a newly built hypernetwork
            self.opt = adam(self.hnet.theta().values(), self.cfg["train"]["lr"], self.cfg)
        self.emb_opt = self.embedding_optimizer(task)

    def regularizer_weight(self, task: int) -> float:
        return 0.0  # each task alone: nothing to protect

    @torch.no_grad()
    def end_task(self, task: int) -> None:
        """Keep what evaluating ``task`` later needs: its weights or its hypernetwork."""
        theta = {n: p.detach().clone() for n, p in self.hnet.theta().items()}
        emb = self.hnet.task_embs[task].detach().clone()
        n_theta = sum(t.numel() for t in theta.values()) + emb.numel()
        n_weights = self.hnet.target_numel + self.hnet.padding
        if n_theta < n_weights:
            self.kept.append({"theta": theta, "emb": emb})
        else:
            self.kept.append({"weights": HNET.weights(self, task, padded=True).detach().clone()})

    # -- evaluation ------------------------------------------------------------------------------
    def weights(self, task: int, padded: bool = False, params: StepParams | None = None) -> Tensor:
        """A learned task's weights from what was kept of its hypernetwork; the current (or a
        not yet learned) task's from the live one."""
        if params is None and task < len(self.kept):
            kept = self.kept[task]
            if "weights" in kept:
                w = kept["weights"]
                return w if padded else w[: self.hnet.target_numel]
            return super().weights(task, padded, params=(kept["theta"], kept["emb"]))
        return super().weights(task, padded, params)

    # -- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**self.network_state(), "kept": self.kept}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.hnet.load_state_dict(state["hnet"])
        self.seen = state["seen"]
        # the optimizer of the hypernetwork being trained (fresh moments since its task began)
        self.opt = adam(self.hnet.theta().values(), self.cfg["train"]["lr"], self.cfg)
        self.opt.load_state_dict(state["opt"])
        if state["emb_opt"] is not None:  # mid-task: the current embedding's optimizer
            self.emb_opt = self.embedding_optimizer(self.seen - 1)
            self.emb_opt.load_state_dict(state["emb_opt"])
        dev = self.device
        self.kept = [
            {"weights": k["weights"].to(dev)}
            if "weights" in k
            else {"theta": {n: t.to(dev) for n, t in k["theta"].items()}, "emb": k["emb"].to(dev)}
            for k in state["kept"]
        ]
        if self.stats is not None:
            self.stats.copy_(state["stats"])

    def memory_bytes(self) -> dict[str, int]:
        """What is kept of every learned task's hypernetwork (its weights, or Θ and its
        embedding, whichever is smaller) and, with BatchNorm, each task's statistics; no
        regularizer targets (nothing is regularized)."""
        out = {"networks": tensor_bytes(self.kept)}
        if self.stats is not None:
            out["batchnorm"] = tensor_bytes(self.stats[: self.seen])
        return out

    def extra_results(self) -> dict[str, Any]:
        return {}  # each embedding belongs to a different hypernetwork: nothing to compare
