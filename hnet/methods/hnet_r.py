"""HNET+R: a plain classifier protected by generative replay from a hypernetwork-protected VAE
(von Oswald et al. 2020, the replay variant of their CL2/CL3 results).

The hypernetwork protects only the replay model (:mod:`hnet.methods.common.replay_model`); the
classifier is an ordinary network with the scenario's heads that, from the second task on,
learns each batch of the current task together with generated samples of every earlier task,
labelled by a frozen copy of itself taken when the task began (distillation,
:mod:`hnet.methods.common.distill`). It needs no task identity at test time, so it answers CL2 and
CL3
like any baseline: with the argmax over its (active) outputs.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
from torch import Tensor

from hnet.errors import ConfigError
from hnet.methods.common.base import METHODS
from hnet.methods.common.baseline import Baseline
from hnet.methods.common.distill import PAD_TARGETS, distill_loss, head_of_each
from hnet.methods.common.memory import tensor_bytes
from hnet.methods.common.replay_model import (
    PIXEL_BENCHMARKS,
    REPLAY_MODEL_DEFAULTS,
    ReplayModel,
    check_replay_model_config,
    initialise,
)


def frozen_copy(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``net`` that gets no gradients (the teacher of the replayed samples)."""
    teacher = copy.deepcopy(net)
    teacher.requires_grad_(False)
    return teacher


@METHODS.register("hnet_r")
class HNETR(Baseline):
    summary = "HNET+R: classifier + replay from a hypernetwork-protected VAE, distilled"
    scenarios = ("cl1", "cl2", "cl3")
    benchmarks = PIXEL_BENCHMARKS
    generative: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {
        **REPLAY_MODEL_DEFAULTS,
        "temperature": 2.0,  # distillation temperature of the replayed samples
        # CL3: the teacher lacks the new task's classes; logits: pad its logits with 0 before
        # the softmax (hypercl's HNET+R); probabilities: pad its softmax with probability 0
        "pad_targets": "logits",
    }

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        hp = cfg[cls.name]
        check_replay_model_config(cls.name, hp)
        if hp["temperature"] <= 0:
            raise ConfigError(f"{cls.name}.temperature must be > 0, got {hp['temperature']!r}.")
        if hp["pad_targets"] not in PAD_TARGETS:
            raise ConfigError(
                f"{cls.name}.pad_targets must be one of {', '.join(PAD_TARGETS)}, "
                f"got {hp['pad_targets']!r}."
            )

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        self.rm = ReplayModel(self.hp, cfg, bench, device)
        self.teacher: torch.nn.Module | None = None

    def build_net(self) -> torch.nn.Module:
        """The classifier, initialised by ``init`` (Xavier with zero biases, as the authors)."""
        return initialise(super().build_net(), self.hp["init"])

    def begin_task(self, task: int) -> None:
        super().begin_task(task)
        self.opt = self.build_optimizer()  # a new Adam per task, as in the paper's code
        if self.hp["replay"]:
            self.teacher = frozen_copy(self.net) if task > 0 else None
            self.rm.begin_task(task)

    def scale_lr(self, factor: float) -> None:
        """Learning-rate schedule: the classifier's rate and the replay model's, each its own
        configured rate times ``factor``."""
        super().scale_lr(factor)
        self.rm.scale_lr(factor)

    def replay_loss(self, task: int) -> Tensor:
        """Distillation on generated samples of every earlier task: each on its own head (CL1),
        the shared head (CL2), or over the classes of tasks 1..t with the teacher's outputs of
        the earlier tasks padded for the new task's classes (CL3; ``pad_targets``: logit 0, as
        the authors, or probability 0)."""
        x, tids = self.rm.replay(task)
        out = self.net(x)
        with torch.no_grad():
            target = self.teacher(x)
        hs = self.bench.head_size
        if self.scenario == "cl3":
            student, target = out[:, : (task + 1) * hs], target[:, : task * hs]
        else:
            student = head_of_each(out, self.net.n_heads, hs, tids)
            target = head_of_each(target, self.net.n_heads, hs, tids)
        return distill_loss(student, target, self.hp["temperature"], self.hp["pad_targets"])

    def train_step(self, task: int, x: Tensor, y: Tensor) -> Tensor:
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_on(x, y, task)
        if task > 0 and self.hp["replay"]:
            loss = 0.5 * loss + 0.5 * self.replay_loss(task)
        loss.backward()
        self.opt.step()
        total = loss.detach()
        if self.hp["replay"]:
            total = total + self.rm.train_step(task, x)
        return total

    def extra_state(self) -> dict[str, Any]:
        return {
            "replay_model": self.rm.state_dict(),
            "teacher": None if self.teacher is None else self.teacher.state_dict(),
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.rm.load_state_dict(state["replay_model"])
        self.teacher = None
        if state["teacher"] is not None:
            self.teacher = frozen_copy(self.net)
            self.teacher.load_state_dict(state["teacher"])

    def param_counts(self) -> dict[str, Any]:
        return {**super().param_counts(), **self.rm.param_counts()}

    def memory_bytes(self) -> dict[str, int]:
        """The replay model (:meth:`ReplayModel.memory_bytes`) and the teacher, the frozen copy
        of the classifier that labels the replayed samples of the next task."""
        if not self.hp["replay"]:
            return super().memory_bytes()
        return {
            **self.rm.memory_bytes(self.seen),
            "teacher": tensor_bytes(self.net),
            **super().memory_bytes(),
        }

    def sample_grid(self) -> dict[str, Any] | None:
        if not self.hp["replay"]:
            return None
        return self.rm.sample_grid(list(range(self.bench.n_tasks - 1)))
