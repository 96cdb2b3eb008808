"""Learning-rate schedules within a task, as multipliers of the configured rates.

``resnet_cifar`` is the step schedule of the official Split CIFAR-10/100 ResNet-32 runs (the
authors' ``--lambda_lr_scheduler``, from Keras' CIFAR-10 ResNet example): the rate is ×0.1 after
epoch 80, ×0.01 after 120, ×0.001 after 160 and ×0.0005 after 180 of 200 epochs. Their factor
of epoch e (0-based) is the one of the last milestone m with e > m, so the drops happen when
epochs 81, 121, 161 and 181 begin. It is written here as fractions of a task's steps (81/200,
…), which is exactly that for 200 epochs and scales the milestones with the task's length for
any other length, epoch- or iteration-based. Every task restarts the schedule, as there.

The factor applies to every optimizer of a method, each relative to its own configured rate:
HNET's Θ and its task-embedding optimizer, a baseline's network, and for the replay family the
replay model's (``rp_lr``) and HNET+TIR's task-inference network.
Torch-free: the config validates names against :data:`LR_SCHEDULES`.
"""

from __future__ import annotations

#: name → ((fraction of the task's steps after which, factor), ...), in increasing order
LR_SCHEDULES: dict[str, tuple[tuple[float, float], ...]] = {
    "none": (),
    "resnet_cifar": ((0.405, 0.1), (0.605, 0.01), (0.805, 0.001), (0.905, 0.0005)),
}


def lr_factor(schedule: str, step: int, total: int) -> float:
    """Multiplier of the base learning rates at ``step`` (0-based) of a task of ``total`` steps:
    the factor of the last milestone at or before ``step``."""
    factor = 1.0
    for fraction, value in LR_SCHEDULES[schedule]:
        if step >= round(fraction * total):
            factor = value
    return factor
