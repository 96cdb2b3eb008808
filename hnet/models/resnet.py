"""ResNet-32 target network for the split CIFAR-10/100 benchmark.

The CIFAR variant of He et al. (2016): a 16-filter stem, then three stages of five basic residual
blocks with 16, 32 and 64 filters (stride 2 entering stages 2 and 3), global average pooling and
a linear ``head``. 1 + 3·5·2 convolutions + the head = 32 weight layers.

Choices that matter for a hypernetwork that generates every parameter:

* Convolutions keep their bias although BatchNorm follows each one (the bias is redundant in
  train mode but it is what the published hypernetwork experiments count and generate).
* BatchNorm's γ/β are ordinary parameters, so they are part of the flat weight vector; the
  running statistics are buffers kept per task by the caller (:mod:`hnet.models.batchnorm`).
* Shortcuts are parameter-free ("option A"): where a block halves the resolution and doubles the
  channels, the input is subsampled with stride 2 and zero-padded in channels. A 1×1 projection
  would add weights the hypernetwork had to generate for no benefit here.

Parameter count for 3×32×32 inputs and 6 heads of 10 (checked in the tests, layer by layer):

    stem      conv 3→16 (448) + BN (32)                                        =     480
    stage 1   5 × [2 × (conv 16→16: 2 320) + 2 × BN 32]                        =  23 520
    stage 2   [conv 16→32 4 640 + conv 32→32 9 248 + 2 × BN 64]
              + 4 × [2 × 9 248 + 2 × 64]                                       =  88 512
    stage 3   [conv 32→64 18 496 + conv 64→64 36 928 + 2 × BN 128]
              + 4 × [2 × 36 928 + 2 × 128]                                     = 352 128
    head      64 × 60 + 60                                                     =   3 900
    total                                                                      = 468 540

which is the ≈ 468.5k of the paper (so its figure includes conv biases, γ/β and the 60 outputs,
and no running statistics). Nothing depends on the image size, so 1×28×28 inputs work as well.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

STAGE_WIDTHS = (16, 32, 64)
BLOCKS_PER_STAGE = 5


def conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """3×3 convolution (with bias) followed by BatchNorm."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=True), nn.BatchNorm2d(c_out)
    )


class BasicBlock(nn.Module):
    """``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))`` with a parameter-free shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride, self.pad = stride, c_out - c_in
        self.a = conv_bn(c_in, c_out, stride)
        self.b = conv_bn(c_out, c_out)

    def shortcut(self, x: Tensor) -> Tensor:
        """Identity, or stride-2 subsampling with the new channels zero-padded (half each side)."""
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            lo = self.pad // 2
            x = F.pad(x, (0, 0, 0, 0, lo, self.pad - lo))
        return x

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.b(F.relu(self.a(x))) + self.shortcut(x))


class ResNet32(nn.Module):
    """ResNet-32 with ``n_heads × head_size`` outputs; accepts ``(B, C, H, W)`` or flat
    ``(B, C·H·W)`` inputs (the latter reshaped with ``in_shape``)."""

    def __init__(self, in_shape: tuple[int, int, int], head_size: int, n_heads: int = 1) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.head_size, self.n_heads = head_size, n_heads
        self.stem = conv_bn(self.in_shape[0], STAGE_WIDTHS[0])
        blocks, c_in = [], STAGE_WIDTHS[0]
        for s, width in enumerate(STAGE_WIDTHS):
            for i in range(BLOCKS_PER_STAGE):
                stride = 2 if s > 0 and i == 0 else 1
                blocks.append(BasicBlock(c_in, width, stride))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c_in, head_size * n_heads)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            x = x.view(x.shape[0], *self.in_shape)
        h = self.blocks(F.relu(self.stem(x)))
        return self.head(h.mean(dim=(2, 3)))
