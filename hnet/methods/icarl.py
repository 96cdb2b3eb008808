"""iCaRL: incremental classifier and representation learning (Rebuffi et al. 2017), as van de
Ven, Tuytelaars & Tolias (2022) run it (``--icarl`` in their continual-learning repository:
``--bce --bce-distill --prototypes --add-buffer --sample-selection herding``, active classes
"all-so-far"), with Mammoth's ``models/icarl.py`` as a second reading.

Why this baseline: it is the template of class-incremental learning with a memory. Three parts,
each of which the others do not replace:

* **Exemplars chosen by herding.** After task t, each new class keeps the m training samples
  whose feature mean, taken greedily one sample at a time, stays closest to the class's mean
  feature (features = the input of the output layer, L2-normalised). Because the choice is
  greedy, a prefix of the list is itself a herding choice: when later classes arrive and the
  total budget ``buffer.size`` (K) is split over more classes (m = ⌊K / classes seen⌋), every
  class keeps the first m of its list.
* **Binary cross-entropy with distillation targets.** Each batch of the current task is joined by
  exemplars of the earlier classes (in the proportion they would have in batches drawn from the
  union of the task's data and the memory, van de Ven's ``--add-buffer``). Every active class is
  an independent sigmoid output; its target is the one-hot label for the new task's classes and,
  for the earlier classes, the sigmoid of the previous model's logit (at temperature T, van de
  Ven's ``binary_targets[:, :n_old] = sigmoid(scores / T)``). Loss: summed over classes,
  averaged over the batch.
* **Nearest mean of exemplars.** The prediction for an input is the class whose exemplar mean
  (normalised feature mean, recomputed with the network after each task) is closest to the
  input's normalised feature. The output layer is used only for training and distillation.
  ``icarl.classifier: head`` predicts with the output layer instead (the ablation).

Scenarios: CL3 only. iCaRL is defined for a growing set of classes with one label space: its
distillation targets are the old classes' sigmoid outputs next to the new classes' labels, and
its classifier is a nearest mean over all classes seen. In CL2 the tasks share their labels, so
one "class" gathers inputs of every task, the old-class targets of the distillation are the
new classes themselves (van de Ven refuses ``--bce-distill`` outside Class-IL), and one mean
cannot represent a class made of several tasks' inputs. In CL1 the task identity picks the
head, which makes the nearest-mean rule over a task's classes a small variant with nothing
class-incremental left to test; van de Ven's compare scripts run iCaRL in Class-IL only.

Everything batched: features, herding (one greedy step per exemplar slot, all candidates at
once), class means (one scatter over all exemplars) and the nearest-mean rule (a whole batch
against every mean). Exemplars are stored as raw rows (the tasks' dtype, e.g. uint8), with
their global class ids; inputs are rebuilt with the owning task's ``inputs()`` (permuted tasks)
and augmented like fresh rows where the task augments.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from hnet import rng
from hnet.errors import ConfigError
from hnet.methods.common.base import METHODS
from hnet.methods.common.baseline import Baseline
from hnet.methods.hnet_r import frozen_copy
from hnet.methods.lwf import load_frozen, module_bytes

CLASSIFIERS = ("nme", "head")


def head_inputs(net: torch.nn.Module, x: Tensor) -> Tensor:
    """The features iCaRL works with: what the net feeds its output layer ``head`` (every target
    network ends in one, :mod:`hnet.models.target`); van de Ven's ``feature_extractor``."""
    got: list[Tensor] = []
    hook = net.head.register_forward_pre_hook(lambda _m, args: got.append(args[0]))
    try:
        net(x)
    finally:
        hook.remove()
    return got[0]


def herding(features: Tensor, n: int) -> Tensor:
    """Indices of ``n`` rows of ``features`` (L2-normalised rows of one class), in the order
    herding picks them: each step adds the row that brings the mean of the rows picked so far
    closest to the normalised mean of all rows (van de Ven's ``construct_memory_set``). One step
    per slot, every candidate scored at once; a row is never picked twice."""
    n = min(n, len(features))
    target = F.normalize(features.mean(0), dim=0)
    picked = torch.empty(n, dtype=torch.long, device=features.device)
    taken = torch.zeros(len(features), dtype=torch.bool, device=features.device)
    total = torch.zeros_like(target)
    for k in range(n):
        dist = ((total + features) / (k + 1) - target).norm(dim=1)
        i = dist.masked_fill(taken, float("inf")).argmin()
        picked[k] = i
        taken[i] = True
        total = total + features[i]
    return picked


def herding_rank(labels: Tensor) -> Tensor:
    """For exemplars stored class by class (each class contiguous, in herding order): each one's
    position within its class, so ``rank < m`` keeps every class's first m."""
    _, counts = torch.unique_consecutive(labels, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    return torch.arange(len(labels), device=labels.device) - starts.repeat_interleave(counts)


@METHODS.register("icarl")
class ICaRL(Baseline):
    summary = "iCaRL: herding exemplars, binary distillation, nearest-mean-of-exemplars classifier"
    scenarios = ("cl3",)
    rehearsal: ClassVar[bool] = True  # buffer.size: exemplars over all classes seen
    defaults: ClassVar[dict[str, Any]] = {
        "temperature": 2.0,  # of the old classes' sigmoid targets (van de Ven's --temp default)
        "classifier": "nme",  # nearest mean of exemplars; head: the output layer (ablation)
    }

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        hp = cfg[cls.name]
        if not isinstance(hp["temperature"], int | float) or hp["temperature"] <= 0:
            raise ConfigError(f"icarl.temperature must be > 0, got {hp['temperature']!r}.")
        if hp["classifier"] not in CLASSIFIERS:
            raise ConfigError(
                f"icarl.classifier must be one of {', '.join(CLASSIFIERS)}, got "
                f"{hp['classifier']!r}."
            )
        size = cfg["buffer"]["size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ConfigError(f"buffer.size must be an integer ≥ 1 for icarl, got {size!r}.")

    def __init__(self, cfg: dict[str, Any], bench, device: torch.device) -> None:
        super().__init__(cfg, bench, device)
        self.budget = cfg["buffer"]["size"]
        self.gen = rng.generator(cfg["seed"], "icarl-batches")
        task0 = bench.tasks[0]
        self.buf_x = task0.x_train[:0].clone()  # raw rows, dtype as stored, class by class
        self.buf_y = task0.y_train[:0].clone().long()  # global class ids
        self.means: Tensor | None = None  # (classes seen, features), L2-normalised
        self.prev: torch.nn.Module | None = None  # the network after the previous task
        self.carry = 0.0  # fraction of an exemplar owed to the next batch (with_exemplars)

    # -- features ------------------------------------------------------------------------------
    @torch.no_grad()
    def features(self, rows: Tensor, tasks: Tensor) -> Tensor:
        """Normalised features of stored ``rows`` of the given tasks, in eval mode, batched."""
        self.net.eval()
        out, bs = [], self.cfg["train"]["eval_batch_size"]
        for start in range(0, len(rows), bs):
            sl = slice(start, start + bs)
            out.append(head_inputs(self.net, self.inputs(rows[sl], tasks[sl])))
        return F.normalize(torch.cat(out), dim=1)

    def inputs(self, rows: Tensor, tasks: Tensor, gen: torch.Generator | None = None) -> Tensor:
        """Network inputs of stored rows, each through its own task's ``inputs()`` (one call
        per task present); ``gen``: crop and flip them like fresh rows where the task augments."""
        x = torch.empty(rows.shape, device=rows.device)
        for s in tasks.unique().tolist():
            mask, data = tasks == s, self.bench.tasks[s]
            picked = rows[mask]
            if gen is not None and data.augment is not None:
                picked = data.augment.crop_flip(picked, gen)
            x[mask] = data.inputs(picked)
        return x

    def task_of(self, classes: Tensor) -> Tensor:
        return torch.div(classes, self.bench.head_size, rounding_mode="floor")

    # -- memory --------------------------------------------------------------------------------
    def end_task(self, task: int) -> None:
        data, hs = self.bench.tasks[task], self.bench.head_size
        n_classes = (task + 1) * hs
        m = self.budget // n_classes
        if m == 0:
            raise ConfigError(
                f"buffer.size={self.budget} leaves no exemplar for each of the {n_classes} classes "
                f"seen after task {task + 1}; set buffer.size ≥ {self.bench.n_tasks * hs}."
            )
        keep = herding_rank(self.buf_y) < m  # the earlier classes shrink to their first m
        xs, ys = [self.buf_x[keep]], [self.buf_y[keep]]
        rows, local = data.x_train, data.y_train.long()
        feats = self.features(rows, torch.full_like(local, task))
        for c in range(hs):  # one herding run per new class, over all of its samples at once
            idx = torch.nonzero(local == c).squeeze(1)
            order = idx[herding(feats[idx], m)]
            xs.append(rows[order])
            ys.append(torch.full_like(order, task * hs + c))
        self.buf_x, self.buf_y = torch.cat(xs), torch.cat(ys)
        self.means = self.class_means(n_classes)
        self.prev = frozen_copy(self.net).eval()  # the distillation teacher of the next task

    def class_means(self, n_classes: int) -> Tensor:
        """Each class's normalised mean of its exemplars' normalised features, by the current
        network (van de Ven's ``classify_with_prototypes`` with ``norm_exemplars``)."""
        feats = self.features(self.buf_x, self.task_of(self.buf_y))
        sums = torch.zeros(n_classes, feats.shape[1], device=feats.device, dtype=feats.dtype)
        sums.index_add_(0, self.buf_y.to(feats.device), feats)
        return F.normalize(sums, dim=1)  # the mean's direction: the count cancels

    def with_exemplars(self, x: Tensor, labels: Tensor, task: int) -> tuple[Tensor, Tensor]:
        """The batch (B rows of a task of N) joined by exemplars drawn without replacement from
        the M stored, as many as batches drawn from the union of task and memory hold on
        average: B·M/N, so m / B = M / N. The fraction of B·M/N is carried to the next step
        (read from no tensor, so a step waits for no device)."""
        self.carry += len(x) * len(self.buf_y) / self.bench.tasks[task].n_train
        n_mem = min(int(self.carry), len(self.buf_y))
        self.carry -= int(self.carry)
        if n_mem == 0:
            return x, labels
        pick = torch.randperm(len(self.buf_y), generator=self.gen)[:n_mem]
        pick = pick.to(self.buf_y.device)
        rows, classes = self.buf_x[pick], self.buf_y[pick]
        x = torch.cat([x, self.inputs(rows, self.task_of(classes), self.gen)])
        return x, torch.cat([labels, classes.to(labels.device)])

    # -- training ------------------------------------------------------------------------------
    def loss_on(
        self, x: Tensor, y: Tensor, task: int, params: dict[str, Tensor] | None = None
    ) -> Tensor:
        """Binary cross-entropy over the active classes with distillation targets for the
        earlier ones, on the batch joined by exemplars."""
        if params is not None:
            raise NotImplementedError("icarl is not packable")
        hs, temp = self.bench.head_size, self.hp["temperature"]
        labels = self.scenario_labels(y, task)
        if task > 0 and len(self.buf_y):
            x, labels = self.with_exemplars(x, labels, task)
        out = self.logits(x, task, self.seen)
        # one-hot by scatter: F.one_hot reads the labels' range back from the device
        target = torch.zeros_like(out).scatter_(1, labels[:, None], 1.0)
        if task > 0 and self.prev is not None:
            with torch.no_grad():
                target[:, : task * hs] = torch.sigmoid(self.prev(x)[:, : task * hs] / temp)
        return F.binary_cross_entropy_with_logits(out, target, reduction="none").sum(1).mean()

    # -- prediction ------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, x: Tensor, task: int) -> tuple[Tensor, Tensor | None]:
        """Nearest mean of exemplars over every class seen (before the first task has exemplars,
        and with ``classifier: head``, the output layer over the active classes)."""
        if self.means is None or self.hp["classifier"] == "head":
            return super().predict(x, task)
        self.net.eval()
        f = F.normalize(head_inputs(self.net, x), dim=1)
        return torch.cdist(f, self.means).argmin(1), None

    # -- accounting and checkpoints --------------------------------------------------------------
    def memory_bytes(self) -> dict[str, int]:
        def size(t: Tensor | None) -> int:
            return 0 if t is None else t.numel() * t.element_size()

        return {
            "samples": size(self.buf_x),
            "labels": size(self.buf_y),
            "class_means": size(self.means),
            "previous_model": 0 if self.prev is None else module_bytes(self.prev),
        }

    def extra_state(self) -> dict[str, Any]:
        return {
            "x": self.buf_x,
            "y": self.buf_y,
            "means": self.means,
            "prev": None if self.prev is None else self.prev.state_dict(),
            "gen": self.gen.get_state(),
            "carry": self.carry,
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        dev = self.buf_y.device
        self.buf_x, self.buf_y = state["x"].to(dev), state["y"].to(dev)
        self.means = None if state["means"] is None else state["means"].to(self.device)
        self.prev = load_frozen(self.net, state["prev"])
        self.gen.set_state(state["gen"].cpu())
        self.carry = state["carry"]
