"""Batched image augmentation on the training device: random crop + horizontal flip, then
per-channel normalisation.

Why not torchvision transforms: they work on one PIL image at a time, which would mean a Python
loop (and a host round trip) per sample, whereas our datasets live on the device as uint8
(docs/design.md). Here a whole batch is cropped and flipped with two gathers.

Reproducibility: the random offsets and flips are drawn on a CPU ``torch.Generator`` (in a fixed
order: offsets, then flips) and only then moved to the data's device, so the same generator
state gives the same batch on the CPU and on any GPU, and a checkpointed generator state
resumes the same augmentation stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class ImageAugment:
    """How a task's stored (n, C, H, W) image rows become network inputs, beyond cast and scale.

    ``mean``/``std`` (per channel, in units of the scaled inputs, e.g. [0, 1]) normalise train
    AND test inputs; ``pad`` (random crop of the original size from the image zero-padded by
    ``pad`` pixels) and ``flip`` (random horizontal flip, probability 1/2) apply to training
    batches only. Crop and flip act on the stored pixels, so the padding is zero before
    normalisation, as with torchvision's ``RandomCrop(padding=pad)`` followed by ``Normalize``.
    """

    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    pad: int = 0
    flip: bool = False

    def __post_init__(self) -> None:
        if (self.mean is None) != (self.std is None):
            raise ValueError("ImageAugment needs both mean and std, or neither")
        if self.mean is not None and len(self.mean) != len(self.std or ()):
            raise ValueError(f"mean {self.mean} and std {self.std} differ in length")
        if self.std is not None and min(self.std) <= 0:
            raise ValueError(f"std must be positive, got {self.std}")
        if self.pad < 0:
            raise ValueError(f"pad must be >= 0, got {self.pad}")

    @property
    def random(self) -> bool:
        """True if training batches are randomly transformed (and consume generator draws)."""
        return self.pad > 0 or self.flip

    def draw(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Crop offsets (n, 2) in ``0..2*pad`` (rows, cols) and flip flags (n,), on the CPU.

        Nothing is drawn for a disabled part, so turning flips off does not shift the crops.
        ``generator=None`` uses torch's global CPU generator (seeded by ``torch.manual_seed``).
        """
        if generator is not None and generator.device.type != "cpu":
            raise ValueError(
                f"the augmentation generator must be a CPU generator (got one on "
                f"{generator.device}) so batches do not depend on the device"
            )
        offsets = torch.full((n, 2), self.pad, dtype=torch.long)  # pad = no shift
        if self.pad > 0:
            offsets = torch.randint(0, 2 * self.pad + 1, (n, 2), generator=generator)
        flips = torch.zeros(n, dtype=torch.bool)
        if self.flip:
            flips = torch.randint(0, 2, (n,), generator=generator).bool()
        return offsets, flips

    def crop_flip(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Randomly crop and flip a batch of stored images (n, C, H, W), keeping dtype and shape."""
        if not self.random:
            return x
        offsets, flips = self.draw(x.shape[0], generator)
        return shift_flip(x, offsets, flips, self.pad)

    def normalize(self, x: Tensor) -> Tensor:
        """Per-channel ``(x - mean) / std`` on float inputs with channels in dim 1."""
        if self.mean is None or self.std is None:
            return x
        shape = (1, len(self.mean)) + (1,) * (x.dim() - 2)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(shape)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(shape)
        return (x - mean) / std


def shift_flip(x: Tensor, offsets: Tensor, flips: Tensor, pad: int) -> Tensor:
    """Crop each image from its zero-padded version at ``offsets`` and flip it where ``flips``.

    Equivalent to padding by ``pad``, cropping H x W at (row, col) = offsets[i] and then
    flipping horizontally, but done as two gathers (rows, then columns) per batch without
    materialising the padded copy: out[i, :, r, c] = x[i, :, r + dy - pad, c' + dx - pad] with
    c' = W-1-c when flipped, and zero where that source pixel falls in the padding.
    """
    n, c, h, w = x.shape
    dev = x.device
    offsets, flips = offsets.to(dev), flips.to(dev)
    rows = torch.arange(h, device=dev) + (offsets[:, :1] - pad)  # (n, h)
    cols = torch.arange(w, device=dev).expand(n, w)
    cols = torch.where(flips[:, None], w - 1 - cols, cols) + (offsets[:, 1:] - pad)  # (n, w)
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    out = x.gather(2, rows.clamp(0, h - 1)[:, None, :, None].expand(n, c, h, w))
    out = out.gather(3, cols.clamp(0, w - 1)[:, None, None, :].expand(n, c, h, w))
    return out.masked_fill_(~inside[:, None], 0)
