"""HNET: continual learning with a task-conditioned hypernetwork (von Oswald et al., 2020).

The target network has no weights of its own; the hypernetwork generates all of them from the
current task's embedding. From the second task on, the output regularizer keeps the
hypernetwork's outputs for earlier embeddings where they were
(:mod:`hnet.methods.common.regularizer`).

A target with BatchNorm (ResNet-32) also has running statistics, which are estimated rather
than generated: each task owns one set, a row of ``self.stats`` (T, S), updated only while that
task trains and used whenever that task (or, in task inference, its embedding) is evaluated
(:mod:`hnet.models.batchnorm`). Targets without BatchNorm have ``self.stats = None``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor
from torch.func import functional_call

from hnet import rng
from hnet.errors import ConfigError
from hnet.fast.output_layer import upgrade_checkpoint
from hnet.methods.common import lookahead, optim
from hnet.methods.common.base import METHODS, Method
from hnet.methods.common.memory import regularizer_bytes, tensor_bytes
from hnet.methods.common.optim import adam
from hnet.methods.common.regularizer import IMPLEMENTATIONS, TARGET_MODES, OutputRegularizer
from hnet.models.batchnorm import init_stats, num_stats
from hnet.models.hypernet import build_hypernet
from hnet.models.sizes import resolve_size
from hnet.models.target import (
    build_target,
    functional_forward,
    head_outputs,
    num_weights,
    other_heads_mask,
)


@METHODS.register("hnet")
class HNET(Method):
    summary = "task-conditioned hypernetwork with output regularizer"
    scenarios = ("cl1", "cl2", "cl3")
    sized: ClassVar[bool] = True
    packable: ClassVar[bool] = True  # hnet.methods.common.packed.PackedHNET
    defaults: ClassVar[dict[str, Any]] = {
        "beta": 0.01,  # regularizer strength β (benchmarks override with their official value)
        "lookahead": True,  # ΔΘ lookahead in the regularizer, as in the paper
        "targets": "stored",  # stored: keep f_h(e_t, Θ*) per task; online: recompute from Θ*
        "reg_tasks": 0,  # regularize a random subset of this many previous tasks (0 = all)
        "mask_heads": False,  # ignore other tasks' output heads in the regularizer
        "emb_lr": None,  # learning rate of the task embedding (None = train.lr)
        "reg_impl": "auto",  # batched regularizer: auto | direct | gram (see hnet.regularizer)
        # a fresh Adam for Θ at the start of every task, as in the authors' code (hypercl
        # mnist/train_splitMNIST.py, cifar/train.py); false: one Adam carried across tasks
        "reset_optimizer": True,
    }

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        hp, key = cfg[cls.name], cls.name  # hnet_scratch shares the section's keys
        if hp["targets"] not in TARGET_MODES:
            raise ConfigError(
                f"{key}.targets must be one of {', '.join(TARGET_MODES)}, got {hp['targets']!r}."
            )
        if hp["reg_impl"] not in IMPLEMENTATIONS:
            raise ConfigError(
                f"{key}.reg_impl must be one of {', '.join(IMPLEMENTATIONS)}, "
                f"got {hp['reg_impl']!r}."
            )
        if hp["beta"] < 0:
            raise ConfigError(f"{key}.beta must be ≥ 0, got {hp['beta']!r}.")
        if hp["reg_tasks"] < 0:
            raise ConfigError(f"{key}.reg_tasks must be ≥ 0 (0 = all), got {hp['reg_tasks']!r}.")
        if not isinstance(hp["reset_optimizer"], bool):
            raise ConfigError(
                f"{key}.reset_optimizer must be true (a fresh Adam for Θ per task, as the "
                f"authors) or false (one Adam carried across tasks), got {hp['reset_optimizer']!r}."
            )

    @staticmethod
    def architecture(cfg: dict[str, Any], bench, n_heads: int) -> tuple[Any, dict[str, Any]]:
        """(target net on the meta device, hypernetwork architecture) of a config. Cheap: study
        checks call it for every size before any job starts (unreachable ratios fail there)."""
        with torch.device("meta"):  # shapes only: the hypernetwork supplies every weight
            target = build_target(
                cfg["target"], bench.in_dim, bench.head_size, n_heads, bench.in_shape
            )
        arch = resolve_size(
            cfg["size"], cfg["default_size"], num_weights(target), bench.n_tasks, cfg["hnet_arch"]
        )
        return target, arch

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        n_tasks = bench.n_tasks
        self.target, self.arch = self.architecture(cfg, bench, self.n_heads())
        n_weights = num_weights(self.target)
        self.hnet = build_hypernet(self.arch, n_weights, n_tasks).to(device)
        self.opt = self.theta_optimizer()
        self.emb_opt: torch.optim.Adam | None = None
        mask = (lambda t: other_heads_mask(self.target, t)) if self.hp["mask_heads"] else None
        self.reg = OutputRegularizer(
            self.hp["targets"], self.hp["reg_tasks"], mask, self.hp["reg_impl"]
        )
        self.gen = rng.generator(cfg["seed"], "regularized-tasks")  # subset sampling only
        # One set of BatchNorm running statistics per task (None: the target has no BatchNorm).
        has_stats = num_stats(self.target) > 0
        self.stats = init_stats(self.target, n_tasks, device) if has_stats else None

    def begin_task(self, task: int) -> None:
        super().begin_task(task)
        if task > 0 and self.hp["reset_optimizer"]:  # task 0's is fresh from __init__
            self.opt = self.theta_optimizer()
        self.emb_opt = self.embedding_optimizer(task)
        self.reg.begin_task(self.hnet, task)

    def theta_optimizer(self) -> torch.optim.Adam:
        """A fresh Adam for Θ (every task with ``reset_optimizer``, else once per run)."""
        return adam(self.hnet.theta().values(), self.cfg["train"]["lr"], self.cfg)

    def embedding_optimizer(self, task: int) -> torch.optim.Adam:
        """A fresh Adam for the current task's embedding (earlier ones stay frozen)."""
        train = self.cfg["train"]
        return adam([self.hnet.task_embs[task]], self.hp["emb_lr"] or train["lr"], self.cfg)

    def weights(self, task: int, padded: bool = False, params: StepParams | None = None) -> Tensor:
        """Task ``task``'s flat target weights ``f_h(e_task, Θ)``; ``padded`` keeps a chunked
        hypernetwork's padding (``self.hnet.padding`` entries at the end) for a caller that
        splits them anyway. ``params``: Θ and e_task as tensors of their own (a functional
        call, as under ``vmap`` for packed seeds) instead of the module's parameters."""
        if params is not None:
            theta, emb = params
            return functional_call(self.hnet, theta, (emb.unsqueeze(0),), {"padded": padded})[0]
        # squeeze, not [0]: indexing would allocate and zero-fill a (1, N) gradient per step
        return self.hnet(self.hnet.embeddings([task]), padded=padded).squeeze(0)

    def task_stats(self, task: int) -> Tensor | None:
        """Task ``task``'s BatchNorm statistics (a view: train mode updates them in place)."""
        return None if self.stats is None else self.stats[task]

    def forward(
        self, task: int, x: Tensor, train: bool = False, params: StepParams | None = None
    ) -> Tensor:
        """The target's outputs for ``task`` with its generated weights and its own statistics;
        ``train`` turns on batch statistics (updating the task's set) and dropout. The weights
        keep a chunked hypernetwork's padding until the target's split (one concatenation in the
        backward instead of two)."""
        weights, pad = self.weights(task, padded=True, params=params), self.hnet.padding
        out = functional_forward(self.target, weights, x, self.task_stats(task), train, pad=pad)
        return head_outputs(out, self.target, task)

    def scale_lr(self, factor: float) -> None:
        """Learning-rate schedule: Θ's and the current embedding's rate times ``factor``."""
        train = self.cfg["train"]
        for g in self.opt.param_groups:
            g["lr"] = train["lr"] * factor
        if self.emb_opt is not None:
            for g in self.emb_opt.param_groups:
                g["lr"] = (self.hp["emb_lr"] or train["lr"]) * factor

    # -- the training step -------------------------------------------------------------------------
    def train_step(self, task: int, x: Tensor, y: Tensor, on: HnetStep | None = None) -> Tensor:
        """One step on ``L_task(Θ, e_T) + β · R(Θ + ΔΘ)`` (the paper's Eq. 2):

        1. the task loss of the current batch, backward: gradients of Θ and e_T;
        2. ΔΘ, the step Adam would take on the task loss alone (``hnet.lookahead``);
        3. the output regularizer R over earlier tasks at Θ + ΔΘ, backward (adds to Θ's
           gradient);
        4. one Adam step for Θ and one for e_T.

        ``on`` takes the step on other tensors: :class:`hnet.methods.common.packed.PackedHNET`
        passes its stack of seeds, whose losses have a seed axis ``(K,)``. This is the one
        place the loss is put together, for a single seed and for packed seeds alike."""
        on = on or self
        loss = on.task_losses(task, x, y)
        on.zero_grad()
        summed(loss).backward()
        total = loss.detach()
        beta = self.regularizer_weight(task)
        if task > 0 and beta > 0:
            ahead = lookahead.adam(on.opt, on.theta()) if self.hp["lookahead"] else None
            reg = on.regularizer(ahead)
            summed(beta * reg).backward()
            total = total + beta * reg.detach()
        on.step()
        return total

    def regularizer_weight(self, task: int) -> float:
        """β of the regularizer while learning ``task`` (the same for every task)."""
        return self.hp["beta"]

    def task_losses(
        self, task: int, x: Tensor, y: Tensor, params: StepParams | None = None
    ) -> Tensor:
        """The task loss of a batch with the current embedding's generated weights (with
        ``params``: of one seed of a pack, see :meth:`weights`)."""
        return self.task_loss(self.forward(task, x, train=True, params=params), y)

    def theta(self) -> dict[str, Tensor]:
        """Θ, the hypernetwork's weights (by name) that the lookahead shifts."""
        return self.hnet.theta()

    def regularizer(self, ahead: lookahead.Lookahead | None) -> Tensor:
        """R over the earlier tasks (a random subset with ``reg_tasks``) at Θ + ΔΘ."""
        return self.reg.loss(self.hnet, self.reg.select(self.gen), ahead)

    def zero_grad(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        self.emb_opt.zero_grad(set_to_none=True)

    def step(self) -> None:
        optim.step(self.opt)
        optim.step(self.emb_opt)

    @torch.no_grad()
    def predict(self, x: Tensor, task: int) -> tuple[Tensor, Tensor | None]:
        if self.scenario == "cl1" or self.bench.kind == "regression":
            out = self.forward(task, x)
            return (out if self.bench.kind == "regression" else out.argmax(-1)), None
        return self.infer_by_entropy(x)

    @torch.no_grad()
    def infer_by_entropy(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """HNET+ENT: run every learned embedding (with its head in CL3) on the batch, pick per
        input the embedding whose softmax has the lowest entropy, classify with it. One vmapped
        call over embeddings, each with its own task's BatchNorm statistics; no extra training,
        no batch-size-1 evaluation."""
        n = self.active_tasks(0)
        weights = self.hnet(self.hnet.embeddings(range(n)))  # (E, N)
        stats = None if self.stats is None else self.stats[:n]  # (E, S)
        logits = functional_forward(self.target, weights, x, stats)  # (E, B, heads·head_size)
        hs = self.bench.head_size
        if self.target.n_heads > 1:  # CL3: embedding e answers with its own head e
            logits = torch.stack([logits[e, :, e * hs : (e + 1) * hs] for e in range(n)])
        else:
            logits = logits[..., :hs]
        logp = logits.log_softmax(-1)
        entropy = -(logp.exp() * logp).sum(-1)  # (E, B)
        task_hat = entropy.argmin(0)  # (B,)
        local = logits.argmax(-1).gather(0, task_hat.unsqueeze(0)).squeeze(0)
        pred = local + task_hat * hs if self.scenario == "cl3" else local
        return pred, task_hat

    def network_state(self) -> dict[str, Any]:
        """The hypernetwork, its two optimizers, the tasks begun and the BatchNorm statistics:
        what every hypernetwork method's checkpoint holds (hnet_scratch adds its kept tasks)."""
        return {
            "hnet": self.hnet.state_dict(),
            "opt": self.opt.state_dict(),
            "emb_opt": None if self.emb_opt is None else self.emb_opt.state_dict(),
            "seen": self.seen,
            "stats": self.stats,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            **self.network_state(),
            "reg": {
                "frozen": self.reg.state(),
                "n_prev": self.reg.n_prev,
                "use_gram": self.reg.use_gram,
            },
            "gen": self.gen.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        reg = state["reg"]  # the exact frozen targets, not recomputed
        opt, frozen = upgrade_checkpoint(self.hnet, state["hnet"], state["opt"], reg["frozen"])
        self.hnet.load_state_dict(state["hnet"])
        self.opt.load_state_dict(opt)
        self.seen = state["seen"]
        if state["emb_opt"] is not None:  # mid-task: the current embedding's optimizer
            self.emb_opt = self.embedding_optimizer(self.seen - 1)
            self.emb_opt.load_state_dict(state["emb_opt"])
        self.reg.load(frozen, reg["n_prev"], reg["use_gram"], self.device)
        self.gen.set_state(state["gen"].cpu())
        if self.stats is not None:
            self.stats.copy_(state["stats"])

    def memory_bytes(self) -> dict[str, int]:
        """Beyond Θ: the learned tasks' embeddings, the regularizer's frozen targets for them
        (what ``begin_task`` of the next task freezes: the outputs, their Gram-form features
        and output layer, or a snapshot of Θ with ``targets: online``) and, for a target with
        BatchNorm, each learned task's running statistics."""
        out = {
            "embeddings": tensor_bytes([self.hnet.task_embs[t] for t in range(self.seen)]),
            "targets": regularizer_bytes(self.reg, self.hnet, self.seen),
        }
        if self.stats is not None:
            out["batchnorm"] = tensor_bytes(self.stats[: self.seen])
        return out

    def extra_results(self) -> dict[str, Any]:
        embs = self.hnet.embeddings(range(self.seen)).detach().cpu()
        return {"task_embeddings": embs.tolist()}

    def param_counts(self) -> dict[str, Any]:
        return {
            "n_params_hnet": self.hnet.num_params(),
            "n_params_target": self.hnet.target_numel,
            "compression_ratio": self.hnet.compression_ratio(),
            "hnet_arch": self.arch,
        }


StepParams = tuple[dict[str, Tensor], Tensor]
"""Θ (by name) and the current task's embedding as tensors of their own (one seed of a pack)."""


class HnetStep(Protocol):
    """What :meth:`HNET.train_step` steps: an HNET itself, or a pack of seeds
    (:class:`hnet.methods.common.packed.PackedHNET`) whose losses carry a seed axis."""

    opt: torch.optim.Optimizer  # Θ's Adam (the lookahead reads its moments)

    def theta(self) -> dict[str, Tensor]: ...
    def task_losses(self, task: int, x: Tensor, y: Tensor) -> Tensor: ...
    def regularizer(self, ahead: lookahead.Lookahead | None) -> Tensor: ...
    def zero_grad(self) -> None: ...
    def step(self) -> None: ...


def summed(loss: Tensor) -> Tensor:
    """A loss to call ``backward`` on: itself, or the sum over a seed axis (the seeds'
    parameters are disjoint, so each seed's gradient is its own loss's)."""
    return loss if loss.dim() == 0 else loss.sum()
