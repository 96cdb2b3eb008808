"""ZenkeNet: the small convolutional target of Zenke et al. (2017), used on split CIFAR-10/100.

    conv 3×3 32 (same) → conv 3×3 32 (valid) → max-pool 2 → dropout
    conv 3×3 64 (same) → conv 3×3 64 (valid) → max-pool 2 → dropout
    flatten → FC 512 → dropout → head

ReLU after every conv and the FC layer, no BatchNorm, so it needs no per-task statistics. The
flatten size follows from ``in_shape``: 64·6·6 = 2304 for 3×32×32 (32 → 30 → 15 → 13 → 6) and
64·5·5 = 1600 for 1×28×28 (28 → 26 → 13 → 11 → 5).

Parameter count for 3×32×32 inputs and 6 heads of 10 (checked in the tests):

    conv 3→32 896, conv 32→32 9 248, conv 32→64 18 496, conv 64→64 36 928,
    FC 2304→512 1 180 160, head 512→60 30 780                         total 1 276 508 (≈ 1.28M)

Almost all of it is the first FC layer, which is why this net is cheap to run but still large
for a hypernetwork to generate.
"""

from __future__ import annotations

from torch import Tensor, nn


def conv_pair(c_in: int, c_out: int, dropout: float) -> nn.Sequential:
    """'same' conv → 'valid' conv → 2×2 max-pool → dropout, ReLU after each conv."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=0),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(dropout),
    )


def feature_side(side: int) -> int:
    """Spatial side after the two conv pairs (valid conv −2, then pool ÷2, twice)."""
    for _ in range(2):
        side = (side - 2) // 2
    return side


class ZenkeNet(nn.Module):
    """Four convs, one hidden FC layer, ``n_heads × head_size`` outputs; accepts ``(B, C, H, W)``
    or flat ``(B, C·H·W)`` inputs (the latter reshaped with ``in_shape``)."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        head_size: int,
        n_heads: int = 1,
        dropout: tuple[float, float] = (0.25, 0.5),
        fc: int = 512,
    ) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.head_size, self.n_heads = head_size, n_heads
        c, h, w = self.in_shape
        if min(feature_side(h), feature_side(w)) < 1:
            raise ValueError(f"ZenkeNet needs images of at least 10×10, got {h}×{w}")
        conv_drop, fc_drop = dropout
        self.features = nn.Sequential(conv_pair(c, 32, conv_drop), conv_pair(32, 64, conv_drop))
        flat = 64 * feature_side(h) * feature_side(w)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(flat, fc), nn.ReLU(), nn.Dropout(fc_drop))
        self.head = nn.Linear(fc, head_size * n_heads)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            x = x.view(x.shape[0], *self.in_shape)
        return self.head(self.fc(self.features(x)))
