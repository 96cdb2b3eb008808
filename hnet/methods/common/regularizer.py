"""The output regularizer that protects earlier tasks (docs/method.md, "Output regularizer").

While learning task T it penalises changes of the hypernetwork's output for earlier embeddings:

    R = 1/|S| · Σ_{t∈S} ‖ f_h(e_t, Θ*) − f_h(e_t, Θ + ΔΘ) ‖²        (S ⊆ {1..T−1})

``Θ*`` is Θ before task T. Targets are either frozen once per task (``stored``) or recomputed
every step from a snapshot of Θ* (``online``: no per-task storage, one extra no-grad forward).
All selected tasks go through ONE batched hypernetwork forward; :meth:`OutputRegularizer.loss_loop`
is the plain per-task reference kept for tests and ``hnet bench``.

Two exact implementations of the batched term:

``direct``  generate all ``E × N`` weights and compare them with the targets.
``gram``    never materialise the ``E × N`` outputs. The output layer ``y = Wᵀ h + b`` is linear
            and shared by all chunks, so the whole term is ``⟨A'A'ᵀ, Σ_r z'_r z'_rᵀ⟩`` for
            ``A' = [W*; W − W*; b − b*]`` and ``z' = [h − h*; h; 1]`` per chunk row: a
            ``(2h+1)²`` Gram matrix over the chunk size, independent of the number of tasks,
            and stored targets shrink from O(T·N) to O(T·chunks·h). One autograd function with
            its own backward (:mod:`hnet.fast.gram`); the last chunk's padding is excluded
            exactly.

``auto`` picks ``gram`` when it does less work (and no head mask is used), else ``direct``;
``hnet bench`` times both against the loop.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from hnet.fast.gram import GramState, OutputGram
from hnet.methods.common.lookahead import Lookahead
from hnet.models.hypernet import HyperNetwork

TARGET_MODES = ("stored", "online")
IMPLEMENTATIONS = ("auto", "direct", "gram")


class OutputRegularizer:
    def __init__(
        self,
        mode: str = "stored",
        n_sample: int = 0,
        head_mask: Callable[[int], Tensor] | None = None,
        impl: str = "auto",
    ) -> None:
        """``n_sample`` > 0 regularizes a fresh random subset of that many previous tasks per step;
        ``head_mask(t)`` (optional) gives a bool mask over the flat weights that hides the heads
        task ``t`` does not use."""
        if mode not in TARGET_MODES:
            raise ValueError(f"regularizer targets must be one of {TARGET_MODES}, got {mode!r}")
        if impl not in IMPLEMENTATIONS:
            raise ValueError(f"regularizer impl must be one of {IMPLEMENTATIONS}, got {impl!r}")
        self.mode, self.n_sample, self.head_mask, self.impl = mode, n_sample, head_mask, impl
        self.n_prev, self.use_gram = 0, False
        self.frozen: dict[str, Tensor] = {}  # what begin_task froze (targets, features or Θ*)
        self.masks: Tensor | None = None  # (n_prev, N) float, when head masking is on
        self.gram: GramState | None = None  # made on the first gram step of a task

    # -- task boundary ---------------------------------------------------------------------------
    def choose_gram(self, hnet: HyperNetwork, n_tasks: int) -> bool:
        if self.impl != "auto":
            return self.impl == "gram"
        if self.head_mask is not None:
            return False
        n_chunks, _, _ = hnet.layout()
        width = hnet.theta()[hnet.output_layer()[0]].shape[0]
        big = n_tasks * hnet.target_numel >= 2**18  # below that, call overheads dominate
        # Gram: two (w+1) × (2w+1) products over the chunk size forward and two backward,
        # ~8·w²·cs multiply-adds; direct: E·C·cs·w per product (three), plus several passes over
        # those E·C·cs floats (difference, loss, gradient, padding) that cost more than their
        # arithmetic. Measured as whole training steps (hnet bench, alternating), since the
        # lookahead writes its ΔW into the Gram buffer: at E = 1, split_fmnist (w 10, C 12)
        # gram 5.56 / 5.43 vs direct 6.04 / 5.77 ms, permuted_fmnist (w 25, C 28) 19.2 / 19.6 vs
        # 23.1 / 23.2 ms; split_digits (8,970 outputs, gram's 51 more operations) is below
        # `big`: direct 1.74 / 1.75 vs gram 1.96 / 1.97 ms at E = 1, 1.82 / 1.87 vs 2.00 / 1.99
        # at E = 4.
        return big and width < n_tasks * n_chunks

    @torch.no_grad()
    def begin_task(self, hnet: HyperNetwork, task: int) -> None:
        """Freeze Θ* (or what is needed of it) for the tasks before ``task``."""
        self.n_prev, self.frozen, self.masks, self.gram = task, {}, None, None
        if task == 0:
            return
        n_sel = min(self.n_sample, task) if self.n_sample > 0 else task
        self.use_gram = self.choose_gram(hnet, n_sel)
        theta = {n: p.detach().clone() for n, p in hnet.theta().items()}
        if self.mode == "online":
            self.frozen = {f"theta.{n}": p for n, p in theta.items()}
        elif self.use_gram:
            w, b = hnet.output_layer()
            embs = hnet.embeddings(range(task))
            self.frozen = {"features": hnet(embs, features=True), "W": theta[w], "b": theta[b]}
        else:
            self.frozen = {"targets": hnet(hnet.embeddings(range(task)))}
        self._build_masks(next(hnet.parameters()).device)

    def _build_masks(self, device: torch.device) -> None:
        if self.head_mask is not None and self.n_prev > 0:
            masks = [self.head_mask(t) for t in range(self.n_prev)]
            self.masks = torch.stack(masks).to(device).float()

    def load(
        self, frozen: dict[str, Tensor], n_prev: int, use_gram: bool, device: torch.device
    ) -> None:
        """Restore what :meth:`begin_task` froze, from a checkpoint (:meth:`state`)."""
        self.frozen, self.n_prev, self.use_gram = dict(frozen), n_prev, use_gram
        self.masks, self.gram = None, None
        self._build_masks(device)

    def state(self) -> dict[str, Tensor]:
        """Tensors a checkpoint must keep to rebuild this regularizer exactly."""
        return dict(self.frozen)

    # -- per step --------------------------------------------------------------------------------
    def select(self, generator: torch.Generator | None = None) -> Tensor:
        """Indices of the previous tasks regularized in this step."""
        if 0 < self.n_sample < self.n_prev:
            return torch.randperm(self.n_prev, generator=generator)[: self.n_sample].sort().values
        return torch.arange(self.n_prev)

    def _snapshot(self) -> dict[str, Tensor]:
        return {n[len("theta.") :]: t for n, t in self.frozen.items() if n.startswith("theta.")}

    def _rows(self, frozen: Tensor, tasks: Tensor) -> Tensor:
        if len(tasks) == self.n_prev:  # all previous tasks: a view, not a copy
            return frozen
        return frozen[tasks.to(frozen.device)]

    def loss(
        self,
        hnet: HyperNetwork,
        tasks: Tensor | None = None,
        lookahead: Lookahead | None = None,
    ) -> Tensor:
        """Batched regularizer over ``tasks`` (default: all previous), at Θ + ΔΘ for the
        ``lookahead``'s detached step ΔΘ (:mod:`hnet.methods.common.lookahead`; None: at Θ)."""
        tasks = self.select() if tasks is None else tasks
        embs = hnet.embeddings(tasks).detach()
        if self.use_gram and self.masks is None:
            return self._gram(hnet, tasks, embs, lookahead)
        if "targets" in self.frozen:
            target = self._rows(self.frozen["targets"], tasks)
        else:
            with torch.no_grad():
                target = functional_call(hnet, self._snapshot(), (embs,))
        masks = None if self.masks is None else self._rows(self.masks, tasks)
        delta = lookahead({}) if lookahead else None
        return direct_loss(hnet, shifted(hnet.theta(), delta), embs, target, masks)

    def _gram(
        self, hnet: HyperNetwork, tasks: Tensor, embs: Tensor, lookahead: Lookahead | None
    ) -> Tensor:
        """The ``gram`` term (:mod:`hnet.fast.gram`): the body of the hypernetwork runs at
        Θ + ΔΘ up to the output layer's input; the output layer and its shift go in whole."""
        if "features" in self.frozen:
            h0 = self._rows(self.frozen["features"], tasks)
            w0, b0 = self.frozen["W"], self.frozen["b"]
        else:
            snap = self._snapshot()
            with torch.no_grad():
                h0 = hnet.features(embs, snap)
            w0, b0 = (snap[n] for n in hnet.output_layer())
        if self.gram is None:  # W* (and W* W*ᵀ) are constant during a task
            self.gram = GramState(w0, b0, hnet.layout()[2])

        def features(body: dict[str, Tensor]) -> Tensor:  # (E, C, width)
            return hnet.features(embs, body)

        total = gram_loss(hnet, hnet.theta(), lookahead, features, h0, self.gram)
        return total / len(tasks)

    def loss_loop(
        self,
        hnet: HyperNetwork,
        tasks: Tensor | None = None,
        lookahead: Lookahead | None = None,
    ) -> Tensor:
        """Reference: the same value as :meth:`loss`, one plain forward per task."""
        tasks = self.select() if tasks is None else tasks
        params = shifted(hnet.theta(), lookahead({}) if lookahead else None)
        snap = self._snapshot() or None
        total = 0.0
        for t in tasks.tolist():
            emb = hnet.embeddings([t]).detach()
            with torch.no_grad():
                if "targets" in self.frozen:
                    target = self.frozen["targets"][t : t + 1]
                elif snap is not None:
                    target = functional_call(hnet, snap, (emb,))
                else:  # stored features: rebuild the target from h* and the frozen output layer
                    h0 = self.frozen["features"][t : t + 1]
                    target = h0 @ self.frozen["W"] + self.frozen["b"]
                    target = target.reshape(1, -1)[:, : hnet.target_numel]
            sq = (functional_call(hnet, params, (emb,)) - target).pow(2)
            if self.masks is not None:
                sq = sq * self.masks[t]
            total = total + sq.sum()
        return total / len(tasks)


def shifted(
    theta: dict[str, Tensor], delta: dict[str, Tensor] | None, skip: tuple[str, ...] = ()
) -> dict[str, Tensor]:
    """Θ + ΔΘ (Θ itself without a lookahead), leaving out the parameters named in ``skip``."""
    theta = {n: p for n, p in theta.items() if n not in skip}
    return {n: p + delta[n] if n in delta else p for n, p in theta.items()} if delta else theta


def gram_loss(
    hnet: HyperNetwork,
    theta: dict[str, Tensor],
    lookahead: Lookahead | None,
    features: Callable[[dict[str, Tensor]], Tensor],
    h0: Tensor,
    state: GramState,
) -> Tensor:
    """The ``gram`` term summed over its tasks (:mod:`hnet.fast.gram`): ``features`` runs
    the hypernetwork's body at Θ + ΔΘ up to the output layer's input; the output layer goes
    into the term whole, its shift ``W + ΔW − W*`` written straight into the term's buffer
    (the lookahead adds ``ΔW`` there in place). Shared with the packed seeds, whose
    ``features`` is vmapped and whose tensors have a leading seed axis."""
    wname, bname = hnet.output_layer()
    rows = state.write_shift(theta[wname], theta[bname])
    delta = lookahead(dict(zip((wname, bname), rows, strict=True))) if lookahead else None
    h = features(shifted(theta, delta, skip=(wname, bname)))
    return OutputGram.apply(h, theta[wname], theta[bname], h0, state)


def direct_loss(
    hnet: HyperNetwork,
    params: dict[str, Tensor],
    embs: Tensor,
    target: Tensor,
    masks: Tensor | None = None,
) -> Tensor:
    """The ``direct`` term: the hypernetwork at ``params`` on ``embs`` (E, d) against the
    targets (E, N), optionally masked (E, N), summed and divided by E. A pure function of its
    tensors, so the packed seeds (:mod:`hnet.methods.common.packed`) vmap it over a seed axis."""
    out = functional_call(hnet, params, (embs,))
    if masks is None:
        return F.mse_loss(out, target, reduction="sum") / embs.shape[0]
    return ((out - target).pow(2) * masks).sum() / embs.shape[0]
