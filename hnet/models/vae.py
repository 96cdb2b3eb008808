"""Variational autoencoders that generate the replayed inputs of the replay family.

Two generators, both MLPs over flat inputs in [0, 1] (pixel means through a sigmoid):

* :class:`HyperVAE`, the replay model of HNET+R and HNET+TIR: an ordinary encoder and a decoder
  whose *every* weight comes from a chunked hypernetwork with its own task embeddings, so the
  output regularizer can protect the decoder of each earlier task exactly as it protects a
  classifier (docs/method.md, "The replay family"). The decoder is also conditioned on a one-hot
  task vector.
* :class:`VAE`, the generator of DGR+distill: encoder and decoder own their weights; it has no
  task condition and is protected only by replaying its own frozen predecessor.

The generated decoder is applied with batched matrix products over a leading axis of weight
vectors, each with its *own* inputs (its own latents and condition), so samples of all earlier
tasks come out of one call. Nothing here reads files or draws from a global random stream: the
caller passes a ``torch.Generator`` on the training device.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hnet.models.hypernet import HyperNetwork, build_hypernet, mlp


def mlp_numel(dims: list[int]) -> int:
    """Weights and biases of the linear layers ``dims[0] → … → dims[-1]``."""
    return sum(a * b + b for a, b in itertools.pairwise(dims))


def batched_mlp(flat: Tensor, dims: list[int], h: Tensor) -> Tensor:
    """An MLP with ReLU between layers and a linear output, one weight vector per row.

    ``flat`` is ``(E, N)`` laid out like ``nn.Sequential`` of ``nn.Linear`` (each layer's weight
    ``(out, in)`` row-major, then its bias); ``h`` is ``(E, B, dims[0])``, a batch per weight
    vector. Returns ``(E, B, dims[-1])``. Views and ``baddbmm`` only: no copy of the weights.
    """
    if flat.shape[1] != mlp_numel(dims):
        raise ValueError(
            f"flat weights have {flat.shape[1]} entries, the MLP needs {mlp_numel(dims)}"
        )
    e, start = flat.shape[0], 0
    layers = list(itertools.pairwise(dims))
    for i, (a, b) in enumerate(layers):
        w = flat[:, start : start + a * b].view(e, b, a)
        start += a * b
        bias = flat[:, start : start + b].view(e, 1, b)
        start += b
        h = torch.baddbmm(bias, h, w.transpose(1, 2))
        if i < len(layers) - 1:
            h = F.relu(h)
    return h


def reparameterize(mu: Tensor, logvar: Tensor, gen: torch.Generator) -> Tensor:
    """``z = μ + σ·ε`` with ``ε ~ N(0, I)`` drawn from ``gen`` (on ``mu``'s device)."""
    eps = torch.randn(mu.shape, generator=gen, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def vae_loss(logits: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """Per-pixel binary cross-entropy averaged over pixels and batch, plus the analytic KL
    divergence to N(0, I) summed over latent dimensions, averaged over the batch and divided by
    the number of pixels (so both terms are per pixel and neither dominates by input size)."""
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="mean")
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1).mean()
    return rec + kl / x.shape[-1]


class Encoder(nn.Module):
    """Pixels → ReLU hidden layers → (μ, log σ²) of the latent; not task-conditioned."""

    def __init__(self, in_dim: int, hidden: list[int], latent: int) -> None:
        super().__init__()
        self.latent = latent
        self.net = mlp([in_dim, *hidden, 2 * latent], "relu")

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = self.net(x)
        return out[:, : self.latent], out[:, self.latent :]


class HyperVAE(nn.Module):
    """Conditional VAE whose decoder weights are generated per task by a hypernetwork.

    Decoder input: latent ``z`` concatenated with a one-hot task condition of ``cond_dim``
    entries; ReLU hidden layers ``dec_hidden``; linear output of ``in_dim`` logits (pixel means
    after a sigmoid). ``dec_arch`` is a resolved hypernetwork size (:mod:`hnet.models.sizes`).
    ``n_tasks`` is the number of decoders, i.e. of the hypernetwork's task embeddings: the
    replay model passes one per task it learns, T − 1 (the last task is never replayed).
    """

    def __init__(
        self,
        in_dim: int,
        n_tasks: int,
        enc_hidden: list[int],
        dec_hidden: list[int],
        latent: int,
        cond_dim: int,
        dec_arch: dict,
    ) -> None:
        super().__init__()
        if cond_dim < n_tasks:
            raise ValueError(f"cond_dim {cond_dim} cannot one-hot encode {n_tasks} tasks")
        self.in_dim, self.latent, self.cond_dim = in_dim, latent, cond_dim
        self.encoder = Encoder(in_dim, enc_hidden, latent)
        self.dec_dims = [latent + cond_dim, *dec_hidden, in_dim]
        self.hnet: HyperNetwork = build_hypernet(dec_arch, mlp_numel(self.dec_dims), n_tasks)

    def decoder_weights(self, tasks: list[int] | Tensor) -> Tensor:
        """Generated decoder weights ``(E, N)`` of ``tasks`` (one hypernetwork call)."""
        return self.hnet(self.hnet.embeddings(tasks))

    def decode(self, weights: Tensor, z: Tensor, tasks: list[int] | Tensor) -> Tensor:
        """Pixel logits ``(E, B, in_dim)`` of latents ``z`` ``(E, B, latent)``, row e decoded
        with ``weights[e]`` under the condition of ``tasks[e]``."""
        tasks = torch.as_tensor(tasks, device=z.device)
        # rows of the identity, not F.one_hot: one_hot reads the largest index back to the host
        cond = torch.eye(self.cond_dim, dtype=z.dtype, device=z.device)[tasks]  # (E, cond)
        cond = cond.unsqueeze(1).expand(-1, z.shape[1], -1)
        return batched_mlp(weights, self.dec_dims, torch.cat([z, cond], dim=-1))

    def loss(self, x: Tensor, task: int, gen: torch.Generator) -> Tensor:
        """VAE loss of a batch of ``task``'s inputs, through ``task``'s generated decoder."""
        mu, logvar = self.encoder(x)
        z = reparameterize(mu, logvar, gen)
        logits = self.decode(self.decoder_weights([task]), z.unsqueeze(0), [task]).squeeze(0)
        return vae_loss(logits, x, mu, logvar)

    @torch.no_grad()
    def sample(self, weights: Tensor, tasks: list[int], z: Tensor) -> Tensor:
        """Pixel means ``(E, B, in_dim)`` for latents ``z`` ``(E, B, latent)`` of ``tasks``
        decoded with ``weights`` (current or frozen decoders)."""
        return torch.sigmoid(self.decode(weights, z, tasks))


class VAE(nn.Module):
    """Unconditional VAE with its own weights: ``in_dim → hidden → latent → reversed(hidden) →
    in_dim`` (the generator of DGR+distill, as deep and wide as its classifier)."""

    def __init__(self, in_dim: int, hidden: list[int], latent: int) -> None:
        super().__init__()
        self.latent = latent
        self.encoder = Encoder(in_dim, hidden, latent)
        self.decoder = mlp([latent, *reversed(hidden), in_dim], "relu")

    def loss(self, x: Tensor, gen: torch.Generator) -> Tensor:
        mu, logvar = self.encoder(x)
        return vae_loss(self.decoder(reparameterize(mu, logvar, gen)), x, mu, logvar)

    @torch.no_grad()
    def sample(self, z: Tensor) -> Tensor:
        """Pixel means ``(B, in_dim)`` of latents ``z`` ``(B, latent)``."""
        return torch.sigmoid(self.decoder(z))


def image_side(in_dim: int) -> int | None:
    """The side of a square single-channel image with ``in_dim`` pixels, or None."""
    side = math.isqrt(in_dim)
    return side if side * side == in_dim else None
