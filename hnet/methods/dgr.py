"""DGR+distill: deep generative replay with distillation (Shin et al. 2017; van de Ven & Tolias
2018, "Generative replay with feedback connections as a general strategy for continual
learning") — the strongest baseline of the paper's Split MNIST CL3 table.

Why it is here: it is the reference for HNET+R and HNET+TIR, generative replay *without* a
hypernetwork. A classifier and an unconditional VAE of the same depth and width train together
on the same batches. From the second task on, a frozen copy of the previous generator produces
one batch of samples per step, a frozen copy of the previous classifier labels them, and both
networks learn them next to the current data with weights 1/t (current) and 1 − 1/t (replay),
so every task seen so far counts the same. The classifier learns the replayed samples by
distillation (every earlier head in CL1, the shared head in CL2, the earlier classes padded with
zero probability for the new ones in CL3); the generator learns them with its own VAE loss, so
it keeps producing the earlier tasks.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import torch
from torch import Tensor

from hnet import rng
from hnet.errors import ConfigError
from hnet.methods.common.base import METHODS
from hnet.methods.common.baseline import Baseline
from hnet.methods.common.distill import distill_loss
from hnet.methods.common.memory import parameter_bytes, tensor_bytes
from hnet.methods.common.optim import adam
from hnet.methods.common.replay_model import GRID_SAMPLES, PIXEL_BENCHMARKS, grid_arrays
from hnet.methods.hnet_r import frozen_copy
from hnet.models.vae import VAE


@METHODS.register("dgr_distill")
class DGRDistill(Baseline):
    summary = "DGR+distill: classifier + VAE generator, replay from frozen copies, distilled"
    scenarios = ("cl1", "cl2", "cl3")
    benchmarks = PIXEL_BENCHMARKS
    generative: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {
        "gen_hidden": None,  # generator hidden layers (None = the classifier's, target.hidden)
        "latent": 100,  # latent dimensions of the generator
        "temperature": 2.0,  # distillation temperature of the replayed samples
        # van de Ven's loss_fn_kd is not multiplied by T² (norm=False in his train_a_batch);
        # true: Hinton et al.'s T² scaling (4× the replay term at T = 2)
        "t_squared": False,
        "replay_batch_size": None,  # replayed samples per step (None = train.batch_size)
        "replay": True,  # false: ablation without replay (no generator is trained)
    }

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        hp = cfg[cls.name]
        hidden = hp["gen_hidden"]
        if hidden is not None and (
            not isinstance(hidden, list) or not all(isinstance(h, int) and h > 0 for h in hidden)
        ):
            raise ConfigError(f"{cls.name}.gen_hidden must be a list of positive integers or null.")
        if not isinstance(hp["latent"], int) or hp["latent"] < 1:
            raise ConfigError(f"{cls.name}.latent must be an integer ≥ 1, got {hp['latent']!r}.")
        if not isinstance(hp["t_squared"], bool):
            raise ConfigError(
                f"{cls.name}.t_squared must be true or false, got {hp['t_squared']!r}."
            )
        if hp["temperature"] <= 0:
            raise ConfigError(f"{cls.name}.temperature must be > 0, got {hp['temperature']!r}.")
        bs = hp["replay_batch_size"]
        if bs is not None and (not isinstance(bs, int) or bs < 1):
            raise ConfigError(f"{cls.name}.replay_batch_size must be ≥ 1 or null, got {bs!r}.")

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        hidden = self.hp["gen_hidden"] or list(cfg["target"]["hidden"])
        self.generator = VAE(bench.in_dim, list(hidden), self.hp["latent"]).to(device)
        self.gen_opt = adam(self.generator.parameters(), cfg["train"]["lr"], cfg)
        self.noise = rng.generator(cfg["seed"], "dgr-noise", device=str(device))
        self.prev_net: torch.nn.Module | None = None
        self.prev_gen: VAE | None = None

    def begin_task(self, task: int) -> None:
        super().begin_task(task)
        if task > 0 and self.hp["replay"]:  # the replay source of this task: frozen copies
            self.prev_net = frozen_copy(self.net)
            self.prev_gen = frozen_copy(self.generator)

    def replay_batch(self) -> Tensor:
        """Samples of the frozen previous generator, drawn on the training device."""
        n = self.hp["replay_batch_size"] or self.cfg["train"]["batch_size"]
        z = torch.randn((n, self.hp["latent"]), generator=self.noise, device=self.device)
        return self.prev_gen.sample(z)

    def replay_loss(self, task: int, x: Tensor) -> Tensor:
        """Distillation of the previous classifier's outputs on generated ``x``."""
        out = self.net(x)
        with torch.no_grad():
            target = self.prev_net(x)
        hs = self.bench.head_size
        kd = functools.partial(
            distill_loss, temperature=self.hp["temperature"], t_squared=self.hp["t_squared"]
        )
        if self.scenario == "cl3":
            return kd(out[:, : (task + 1) * hs], target[:, : task * hs])
        if self.net.n_heads == 1:
            return kd(out[:, :hs], target[:, :hs])
        # CL1: the task of a generated sample is unknown: every earlier head learns it
        heads = [slice(r * hs, (r + 1) * hs) for r in range(task)]
        return sum(kd(out[:, h], target[:, h]) for h in heads) / task

    def scale_lr(self, factor: float) -> None:
        """The classifier's and the generator's rates (both train.lr) times ``factor``."""
        super().scale_lr(factor)
        for g in self.gen_opt.param_groups:
            g["lr"] = self.cfg["train"]["lr"] * factor

    def train_step(self, task: int, x: Tensor, y: Tensor) -> Tensor:
        replay = task > 0 and self.hp["replay"]
        w_cur, w_rep = (1 / (task + 1), 1 - 1 / (task + 1)) if replay else (1.0, 0.0)
        xr = self.replay_batch() if replay else None
        self.opt.zero_grad(set_to_none=True)
        loss = w_cur * self.loss_on(x, y, task)
        if replay:
            loss = loss + w_rep * self.replay_loss(task, xr)
        loss.backward()
        self.opt.step()
        total = loss.detach()
        if self.hp["replay"]:
            self.gen_opt.zero_grad(set_to_none=True)
            gen_loss = w_cur * self.generator.loss(x, self.noise)
            if replay:
                gen_loss = gen_loss + w_rep * self.generator.loss(xr, self.noise)
            gen_loss.backward()
            self.gen_opt.step()
            total = total + gen_loss.detach()
        return total

    def extra_state(self) -> dict[str, Any]:
        return {
            "generator": self.generator.state_dict(),
            "gen_opt": self.gen_opt.state_dict(),
            "noise": self.noise.get_state(),
            "prev_net": None if self.prev_net is None else self.prev_net.state_dict(),
            "prev_gen": None if self.prev_gen is None else self.prev_gen.state_dict(),
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.gen_opt.load_state_dict(state["gen_opt"])
        self.noise.set_state(state["noise"].cpu())
        self.prev_net = self.prev_gen = None
        if state["prev_net"] is not None:
            self.prev_net = frozen_copy(self.net)
            self.prev_net.load_state_dict(state["prev_net"])
        if state["prev_gen"] is not None:
            self.prev_gen = frozen_copy(self.generator)
            self.prev_gen.load_state_dict(state["prev_gen"])

    def memory_bytes(self) -> dict[str, int]:
        """The generator, and the frozen copies of the generator and the classifier that are
        the next task's replay source and teacher. Nothing without replay."""
        if not self.hp["replay"]:
            return super().memory_bytes()
        return {
            "generator": parameter_bytes(self.generator),
            "generator_copy": tensor_bytes(self.generator),
            "teacher": tensor_bytes(self.net),
            **super().memory_bytes(),
        }

    def param_counts(self) -> dict[str, Any]:
        n_gen = sum(p.numel() for p in self.generator.parameters())
        return {**super().param_counts(), "n_params_generator": n_gen}

    @torch.no_grad()
    def sample_grid(self) -> dict[str, Any] | None:
        """The final generator has no task condition: rows of unconditional samples (task −1),
        as many rows as the other replay methods show tasks, from fixed noise."""
        if not self.hp["replay"]:
            return None
        rows = max(1, self.bench.n_tasks - 1)
        gen = rng.generator(self.cfg["seed"], "sample-grid")
        z = torch.randn((rows, GRID_SAMPLES, self.hp["latent"]), generator=gen)
        x = self.generator.sample(z.to(self.device).reshape(rows * GRID_SAMPLES, -1))
        return grid_arrays(self.bench, x.reshape(rows, GRID_SAMPLES, -1), [-1] * rows)
