"""Packed seeds: K seeds of one grid cell trained in one process, parameters stacked.

Each seed keeps its ordinary method object (built exactly as its own job would build it, so its
initialisation, generators and checkpoints are the unpacked ones). A :class:`Packed` wrapper
stacks the trainable tensors of the K methods on a leading seed axis and takes the training
steps on the stack with ``torch.func``: ``vmap`` over ``functional_call`` of the seeds' shared
module structure, each seed on its own batch. The summed loss has disjoint parameters per seed,
so its gradient for seed s is seed s's own. Adam is elementwise and all seeds step together
(one ``step`` counter, the same bias correction), so one Adam over the stack is K per-seed Adams;
the same holds for the hypernetwork's lookahead ΔΘ (:func:`~hnet.methods.common.lookahead.adam`
on the stack).

The stack is authoritative during a task. At boundaries the job calls :meth:`Packed.store`
(stack → per-seed methods: weights and optimizer state), uses the per-seed methods (begin/end a
task, evaluate, checkpoint, exactly as unpacked) and calls :meth:`Packed.refresh` (per-seed →
stack) after changing them.

What packs (:func:`refusal` says why not otherwise): ``hnet`` with stored regularizer targets,
``finetune`` and ``scratch``, on MLP targets (no BatchNorm statistics, no dropout randomness).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.func import vmap

from hnet.fast.gram import GramState
from hnet.methods.common import optim
from hnet.methods.common.base import METHODS, Method
from hnet.methods.common.lookahead import Lookahead
from hnet.methods.common.regularizer import direct_loss, gram_loss, shifted
from hnet.methods.finetune import Finetune
from hnet.methods.hnet import HNET
from hnet.methods.scratch import Scratch


def refusal(cfg: dict[str, Any]) -> str | None:
    """Why the seeds of ``cfg`` cannot be packed, or None when they can."""
    cls = METHODS.get(cfg["method"])
    if not cls.packable or cls not in PACKERS:
        return f"method {cfg['method']!r} is not packable"
    if cfg["target"].get("kind", "mlp") != "mlp":
        return f"target.kind={cfg['target']['kind']!r} (only mlp targets are packed)"
    if cls is HNET and cfg["hnet"]["targets"] != "stored":
        return f"hnet.targets={cfg['hnet']['targets']!r} (only stored targets are packed)"
    return None


def stack_optimizer(opts: list[torch.optim.Optimizer], params: list[Tensor]) -> Any:
    """One optimizer over the stacked ``params`` holding the K optimizers' states stacked.
    Scalar state (Adam's ``step``) is the same for every seed, as all seeds step together."""
    first = opts[0]
    packed = type(first)(params, **first.defaults)
    states = [o.state_dict() for o in opts]
    merged: dict[int, dict[str, Any]] = {}
    for i, st in states[0]["state"].items():
        merged[i] = {}
        for k, v in st.items():
            if torch.is_tensor(v) and v.dim() > 0:
                merged[i][k] = torch.stack([s["state"][i][k] for s in states])
            else:
                if any(not _equal(s["state"][i][k], v) for s in states):
                    raise ValueError(f"optimizer state {k!r} differs between the packed seeds")
                merged[i][k] = v
    packed.load_state_dict({"state": merged, "param_groups": states[0]["param_groups"]})
    return packed


def _equal(a: Any, b: Any) -> bool:
    return bool(torch.equal(a, b)) if torch.is_tensor(a) else a == b


def unstack_optimizer(packed: torch.optim.Optimizer, s: int) -> dict[str, Any]:
    """Seed ``s``'s share of a stacked optimizer, as its own optimizer's ``state_dict``."""
    sd = packed.state_dict()
    state = {
        i: {k: v[s] if torch.is_tensor(v) and v.dim() > 0 else v for k, v in st.items()}
        for i, st in sd["state"].items()
    }
    return {"state": state, "param_groups": sd["param_groups"]}


class Packed:
    """K methods of one config, trained as one. Subclasses say which parameters each optimizer
    of a method owns (:meth:`groups`) and how a step looks on the stack (:meth:`train_step`)."""

    def __init__(self, methods: list[Method]) -> None:
        self.methods = methods
        self.params: dict[str, dict[str, nn.Parameter]] = {}
        self.opts: dict[str, torch.optim.Optimizer] = {}
        self.refresh()

    @property
    def k(self) -> int:
        return len(self.methods)

    def groups(self, m: Method) -> dict[str, dict[str, Tensor]]:
        """``{optimizer attribute: {name: parameter}}`` of one method (None optimizers left out)."""
        raise NotImplementedError

    def refresh(self) -> None:
        """Per-seed methods → stack: parameters and optimizer states."""
        per_seed = [self.groups(m) for m in self.methods]
        self.params, self.opts = {}, {}
        for attr, named in per_seed[0].items():
            self.params[attr] = {
                n: nn.Parameter(torch.stack([g[attr][n].detach() for g in per_seed])) for n in named
            }
            opts = [getattr(m, attr) for m in self.methods]
            self.opts[attr] = stack_optimizer(opts, list(self.params[attr].values()))

    @torch.no_grad()
    def store(self) -> None:
        """Stack → per-seed methods, so they can be evaluated and checkpointed as unpacked."""
        for s, m in enumerate(self.methods):
            for attr, named in self.groups(m).items():
                for n, p in named.items():
                    p.copy_(self.params[attr][n][s])
                getattr(m, attr).load_state_dict(unstack_optimizer(self.opts[attr], s))

    def drop(self, s: int) -> Method:
        """Take seed ``s`` out of the pack (its training diverged); returns its method."""
        self.store()
        m = self.methods.pop(s)
        if self.methods:
            self.refresh()
        return m

    def scale_lr(self, factor: float) -> None:
        """Each method's own rule on its optimizers, copied to the stacked ones."""
        for m in self.methods:
            m.scale_lr(factor)
        m = self.methods[0]
        for attr, opt in self.opts.items():
            for mine, theirs in zip(opt.param_groups, getattr(m, attr).param_groups, strict=True):
                mine["lr"] = theirs["lr"]

    def zero_grad(self) -> None:
        for opt in self.opts.values():
            opt.zero_grad(set_to_none=True)

    def step(self) -> None:
        for opt in self.opts.values():
            optim.step(opt)

    def step_on(self, task: int, xs: list[Tensor], ys: list[Tensor]) -> Tensor:
        """One step of every seed on its own batch; the seeds' losses ``(K,)``."""
        return self.train_step(task, torch.stack(xs), torch.stack(ys))

    def train_step(self, task: int, x: Tensor, y: Tensor) -> Tensor:
        """One step of every seed on its batch ``x[s], y[s]``; the seeds' losses ``(K,)``."""
        raise NotImplementedError


class Solo:
    """One method, stepped as it is: the trainer :func:`pack` gives a single job, with the
    interface of :class:`Packed` and nothing stacked (store and refresh have nothing to do)."""

    def __init__(self, methods: list[Method]) -> None:
        self.methods = methods

    def step_on(self, task: int, xs: list[Tensor], ys: list[Tensor]) -> Tensor:
        return self.methods[0].train_step(task, xs[0], ys[0])

    def scale_lr(self, factor: float) -> None:
        self.methods[0].scale_lr(factor)

    def store(self) -> None:
        pass

    def refresh(self) -> None:
        pass

    def drop(self, s: int) -> Method:
        return self.methods.pop(s)


class PackedHNET(Packed):
    """The hypernetworks' Θ and the current task embedding stacked, each under one Adam (both
    fresh per task unless ``hnet.reset_optimizer`` is false: each seed's ``begin_task`` makes
    them, the :meth:`refresh` after it stacks them); the output regularizer runs over seeds
    with each seed's own frozen state, its own lookahead ΔΘ and its own subset of earlier
    tasks: the ``gram`` term on the stack (its function takes a leading seed axis) when the
    seeds chose it, else the ``direct`` term vmapped. Checkpoints of packs from before gram
    was packed hold targets and say ``direct``."""

    methods: list[HNET]

    def groups(self, m: HNET) -> dict[str, dict[str, Tensor]]:
        out: dict[str, dict[str, Tensor]] = {"opt": dict(m.hnet.theta())}
        if m.emb_opt is not None:
            out["emb_opt"] = {"emb": m.hnet.task_embs[m.seen - 1]}
        return out

    def refresh(self) -> None:
        super().refresh()
        ms = self.methods
        with torch.no_grad():
            self.embs = torch.stack([torch.stack(list(m.hnet.task_embs)) for m in ms]).detach()
        reg = ms[0].reg
        self.targets = self.features = self.gram = None
        if reg.n_prev == 0:
            return
        frozen = [m.reg.frozen for m in ms]
        if reg.use_gram and reg.masks is None:
            self.features = torch.stack([f["features"] for f in frozen])  # (K, n_prev, C, w)
            w, b = (torch.stack([f[k] for f in frozen]) for k in ("W", "b"))
            self.gram = GramState(w, b, ms[0].hnet.layout()[2])
        else:
            self.targets = torch.stack([f["targets"] for f in frozen])  # (K, n_prev, N)

    def train_step(self, task: int, x: Tensor, y: Tensor) -> Tensor:
        """:meth:`HNET.train_step` itself, taken on the stack (this object is its ``on``)."""
        return self.methods[0].train_step(task, x, y, on=self)

    @property
    def opt(self) -> torch.optim.Optimizer:
        """The stacked Θ's Adam (the lookahead reads its moments)."""
        return self.opts["opt"]

    def theta(self) -> dict[str, Tensor]:
        return self.params["opt"]

    def task_losses(self, task: int, x: Tensor, y: Tensor) -> Tensor:
        """:meth:`HNET.task_losses` vmapped over the seeds, each on its own batch: ``(K,)``."""
        m0 = self.methods[0]

        def one_seed(theta: dict[str, Tensor], emb: Tensor, xs: Tensor, ys: Tensor) -> Tensor:
            return m0.task_losses(task, xs, ys, params=(theta, emb))

        return vmap(one_seed)(self.theta(), self.params["emb_opt"]["emb"], x, y)

    def regularizer(self, ahead: Lookahead | None) -> Tensor:
        """Each seed's output regularizer ``(K,)``, drawing its subset from its own generator."""
        m0, theta = self.methods[0], self.theta()
        hnet, device = m0.hnet, self.embs.device
        tasks = torch.stack([m.reg.select(m.gen) for m in self.methods]).to(device)  # (K, n)
        rows = torch.arange(self.k, device=device).unsqueeze(1)
        embs = self.embs[rows, tasks]  # (K, n, d)
        if self.gram is not None:
            feats = vmap(lambda p, e: hnet.features(e, p))
            h0 = self.features[rows, tasks]  # (K, n, C, w)
            total = gram_loss(hnet, theta, ahead, lambda body: feats(body, embs), h0, self.gram)
            return total / tasks.shape[1]
        assert self.targets is not None
        targets = self.targets[rows, tasks]  # (K, n, N)
        params = shifted(theta, ahead({}) if ahead else None)
        masks = m0.reg.masks
        if masks is None:
            return vmap(lambda p, e, t: direct_loss(hnet, p, e, t))(params, embs, targets)
        masks = masks[tasks]  # (K, n, N): the same heads for every seed
        return vmap(lambda p, e, t, mk: direct_loss(hnet, p, e, t, mk))(
            params, embs, targets, masks
        )


class PackedFinetune(Packed):
    """The target nets' weights stacked under one Adam, each seed on its own batch. Also
    ``scratch``: its fresh network and Adam per task are made by each seed's ``begin_task``
    (under the seed's own stream) and stacked by the :meth:`refresh` after it."""

    methods: list[Finetune]

    def groups(self, m: Finetune) -> dict[str, dict[str, Tensor]]:
        return {"opt": dict(m.net.named_parameters())}

    def train_step(self, task: int, x: Tensor, y: Tensor) -> Tensor:
        """:meth:`Baseline.loss_on` vmapped over the seeds, each on its own batch; one step."""
        m0 = self.methods[0]
        m0.net.train()

        def one_seed(params: dict[str, Tensor], xs: Tensor, ys: Tensor) -> Tensor:
            return m0.loss_on(xs, ys, task, params=params)

        losses = vmap(one_seed)(self.params["opt"], x, y)  # (K,): one seed's loss each
        self.zero_grad()
        losses.sum().backward()
        self.step()
        return losses.detach()


PACKERS: dict[type, type[Packed]] = {
    HNET: PackedHNET,
    Finetune: PackedFinetune,
    Scratch: PackedFinetune,
}


def pack(methods: list[Method]) -> Packed | Solo:
    """The trainer of ``methods`` (one config, one or several seeds): the method itself for one,
    its packer (parameters stacked over seeds) for several."""
    if len(methods) == 1:
        return Solo(methods)
    return PACKERS[type(methods[0])](methods)
