"""HNET+TIR: task inference by replay (von Oswald et al. 2020).

The classifier is a plain HNET trained as in CL1 — each task through its own embedding, on its
own head in CL3 or the shared head in CL2 — so its protection is exactly HNET's. What CL2/CL3
add is the question *which* embedding to use for a test input. HNET+ENT answers it with the
lowest predictive entropy; here a separate task-inference network answers it, trained
class-incrementally over tasks: real inputs of the current task labelled with its index, and
generated inputs of every earlier task (from the hypernetwork-protected replay model,
:mod:`hnet.methods.common.replay_model`) labelled with theirs. At test time its argmax picks the
embedding (and head); the inferred ids are returned, so the job records the task-inference
accuracy as for ENT.

In CL1 the task is given and HNET+TIR *is* plain HNET, so only CL2 and CL3 are declared:
the ``hnet`` method is the CL1 entry, and no replay model is trained where it cannot matter.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from hnet.errors import ConfigError
from hnet.methods.common.base import METHODS
from hnet.methods.common.memory import parameter_bytes
from hnet.methods.common.optim import adam
from hnet.methods.common.replay_model import (
    PIXEL_BENCHMARKS,
    REPLAY_MODEL_DEFAULTS,
    ReplayModel,
    check_replay_model_config,
    initialise,
)
from hnet.methods.hnet import HNET
from hnet.models.target import MLP, functional_forward, head_outputs


@METHODS.register("hnet_tir")
class HNETTIR(HNET):
    summary = "HNET+TIR: hnet classifier, task inferred by a replay-trained network"
    scenarios = ("cl2", "cl3")
    sized: ClassVar[bool] = True
    benchmarks = PIXEL_BENCHMARKS
    generative: ClassVar[bool] = True
    packable: ClassVar[bool] = False  # the replay network's step is not packed
    defaults: ClassVar[dict[str, Any]] = {
        **HNET.defaults,  # the classifier is an HNET: same keys, same meaning
        **REPLAY_MODEL_DEFAULTS,
        "dec_hidden": [50, 150],  # the smaller decoder of the paper's TIR runs (Split MNIST)
        "tir_hidden": [400, 400],  # hidden layers of the task-inference network
    }

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        hp = cfg[cls.name]
        try:  # the classifier's keys are HNET's; name them as this method's section
            HNET.check_config({"hnet": hp})
        except ConfigError as e:
            raise ConfigError(str(e).replace("hnet.", f"{cls.name}.", 1)) from None
        check_replay_model_config(cls.name, hp)
        if not isinstance(hp["tir_hidden"], list) or not all(
            isinstance(h, int) and h > 0 for h in hp["tir_hidden"]
        ):
            raise ConfigError(f"{cls.name}.tir_hidden must be a list of positive integers.")

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        self.rm = ReplayModel(self.hp, cfg, bench, device)
        # one output per task; only the tasks seen so far compete (softmax over them)
        infer_net = MLP(bench.in_dim, list(self.hp["tir_hidden"]), bench.n_tasks).to(device)
        self.infer_net = initialise(infer_net, self.hp["init"])
        self.infer_opt: torch.optim.Adam | None = None

    def begin_task(self, task: int) -> None:
        super().begin_task(task)
        if self.hp["replay"]:
            self.rm.begin_task(task)
        # with one task there is nothing to tell apart: trained from the second task on
        self.infer_opt = self.infer_optimizer() if task > 0 else None

    def infer_optimizer(self) -> torch.optim.Adam:
        return adam(self.infer_net.parameters(), self.cfg["train"]["lr"], self.cfg)

    def scale_lr(self, factor: float) -> None:
        """Learning-rate schedule: the classifier's Θ and embedding (as HNET), the
        task-inference network and the replay model, each its own configured rate times
        ``factor``."""
        super().scale_lr(factor)
        if self.infer_opt is not None:
            for g in self.infer_opt.param_groups:
                g["lr"] = self.cfg["train"]["lr"] * factor
        self.rm.scale_lr(factor)

    def inference_step(self, task: int, x: Tensor) -> Tensor:
        """One step of the task-inference network: real inputs → ``task``, generated inputs of
        each earlier task r → r (hard labels), over the tasks seen so far, weighted 0.5 / 0.5."""
        self.infer_opt.zero_grad(set_to_none=True)
        n = task + 1
        real = F.cross_entropy(
            self.infer_net(x)[:, :n], torch.full((len(x),), task, device=x.device)
        )
        loss = real
        if self.hp["replay"]:
            xr, tids = self.rm.replay(task)
            loss = 0.5 * real + 0.5 * F.cross_entropy(self.infer_net(xr)[:, :n], tids)
        loss.backward()
        self.infer_opt.step()
        return loss.detach()

    def train_step(self, task: int, x: Tensor, y: Tensor) -> Tensor:
        total = super().train_step(task, x, y)  # the HNET classifier, CL1-style
        if self.infer_opt is not None:
            total = total + self.inference_step(task, x)
        if self.hp["replay"]:
            total = total + self.rm.train_step(task, x)
        return total

    @torch.no_grad()
    def predict(self, x: Tensor, task: int) -> tuple[Tensor, Tensor | None]:
        """Inferred task per input, then each group of inputs through its task's embedding and
        head: one target-network call per inferred task on all of its inputs."""
        n = self.active_tasks(0)
        task_hat = self.infer_net(x)[:, :n].argmax(-1)
        weights = self.hnet(self.hnet.embeddings(range(n)))  # (E, N), one hypernetwork call
        local = torch.empty_like(task_hat)
        for e in task_hat.unique().tolist():
            rows = task_hat == e
            out = functional_forward(self.target, weights[e], x[rows])
            local[rows] = head_outputs(out, self.target, e).argmax(-1)
        pred = local + task_hat * self.bench.head_size if self.scenario == "cl3" else local
        return pred, task_hat

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "replay_model": self.rm.state_dict(),
            "infer_net": self.infer_net.state_dict(),
            "infer_opt": None if self.infer_opt is None else self.infer_opt.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.rm.load_state_dict(state["replay_model"])
        self.infer_net.load_state_dict(state["infer_net"])
        self.infer_opt = None
        if state["infer_opt"] is not None:
            self.infer_opt = self.infer_optimizer()
            self.infer_opt.load_state_dict(state["infer_opt"])

    def memory_bytes(self) -> dict[str, int]:
        """HNET's (embeddings, regularizer targets), the replay model
        (:meth:`ReplayModel.memory_bytes`) and the task-inference network."""
        return {
            **super().memory_bytes(),
            **self.rm.memory_bytes(self.seen),
            "task_inference": parameter_bytes(self.infer_net),
        }

    def param_counts(self) -> dict[str, Any]:
        n_infer = sum(p.numel() for p in self.infer_net.parameters())
        return {**super().param_counts(), **self.rm.param_counts(), "n_params_infer": n_infer}

    def sample_grid(self) -> dict[str, Any] | None:
        if not self.hp["replay"]:
            return None
        return self.rm.sample_grid(list(range(self.bench.n_tasks - 1)))
