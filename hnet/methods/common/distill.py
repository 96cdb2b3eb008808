"""Distillation targets for generated samples (HNET+R, DGR+distill).

Generated inputs have no labels; a frozen copy of the classifier taken when the task began
labels them with its logits, and the learner matches the softened distribution (Hinton et al.
2015, as used for replay by van de Ven & Tolias 2018). Soft targets carry what the old network
believed, including its uncertainty about poor samples, which hard labels would throw away.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: how :func:`distill_loss` fills the classes the teacher lacks (see there)
PAD_TARGETS = ("logits", "probabilities")


def distill_loss(
    student: Tensor,
    teacher: Tensor,
    temperature: float,
    pad: str = "probabilities",
    t_squared: bool = True,
) -> Tensor:
    """Cross-entropy between ``softmax(teacher/T)`` and ``log_softmax(student/T)``, summed over
    classes, averaged over samples, times T² (so gradients keep their scale across T; Hinton et
    al. 2015 and hypercl's ``knowledge_distillation_loss``). ``t_squared=False`` leaves the T²
    out, as van de Ven's ``loss_fn_kd`` does by default (``norm=False``; his DGR+distill and LwF).

    ``teacher`` may have fewer classes than ``student`` (class-incremental: the new task's
    classes come last). ``pad="probabilities"`` gives the missing classes target probability 0
    (van de Ven's ``loss_fn_kd``, DGR+distill); ``pad="logits"`` gives them teacher logit 0
    before the softmax (hypercl's HNET+R in CL3, ``get_fake_data_loss``), so they keep some
    target probability and the old classes' targets sum to less than 1.
    """
    extra = student.shape[-1] - teacher.shape[-1]
    if extra < 0:
        raise ValueError(f"teacher has {teacher.shape[-1]} classes, student {student.shape[-1]}")
    if pad not in PAD_TARGETS:
        raise ValueError(f"pad must be one of {PAD_TARGETS}, got {pad!r}")
    if extra and pad == "logits":
        teacher = F.pad(teacher, (0, extra))
    target = F.softmax(teacher / temperature, dim=-1)
    if target.shape[-1] < student.shape[-1]:
        target = F.pad(target, (0, extra))
    logq = F.log_softmax(student / temperature, dim=-1)
    loss = -(target * logq).sum(-1).mean()
    return loss * temperature**2 if t_squared else loss


def head_of_each(out: Tensor, heads: int, head_size: int, tids: Tensor) -> Tensor:
    """Per sample, the ``head_size`` outputs of its own task's head (one head: the shared one)."""
    if heads == 1:
        return out[:, :head_size]
    rows = torch.arange(len(out), device=out.device)
    return out.view(len(out), heads, head_size)[rows, tids]
