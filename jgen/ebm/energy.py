"""Energy networks E_theta(x): a scalar per example, low where the data are (density p(x) ~ exp(-E(x)))."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax

__all__ = ["ConvEnergy", "MLPEnergy"]


class ConvEnergy(nn.Module):
    """A small CNN energy for 16x16 (or any small square) single-channel images in [-1, 1].

    Each entry of `channels` is a 3x3 convolution with stride 2 (16 -> 8 -> 4 -> 2 pixels) followed by SiLU
    (Swish), then a dense SiLU layer of `hidden` units and a linear layer to one energy. Smooth activations
    matter here: Langevin sampling follows `grad_x E`, which a ReLU network makes piecewise constant.
    This is the network of the widely copied UvA deep-learning tutorial on EBMs (there for 28x28 MNIST),
    scaled to 16x16.

    Input `[batch, H, W, 1]` (or `[batch, H, W]`); output `[batch]` energies (nats, up to a constant).

    References:
      Du, Y. and Mordatch, I. (2019). Implicit generation and modeling with energy based models. NeurIPS.
      Lippe, P. (2022). UvA DL tutorial 8: deep energy-based generative models.
    """

    channels: Sequence[int] = (16, 32, 64)
    hidden: int = 64

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim == 3:
            x = x[..., None]
        for ch in self.channels:
            # Padding 1 on both sides, as PyTorch's padding=1 (XLA's "SAME" would pad only after the image).
            x = nn.silu(nn.Conv(ch, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))(x))
        h = nn.silu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
        return nn.Dense(1)(h)[:, 0]


class MLPEnergy(nn.Module):
    """An MLP energy for low-dimensional data (2-D toys): SiLU hidden layers, one linear output.

    Input `[batch, d]`; output `[batch]` energies.
    """

    hidden: Sequence[int] = (128, 128)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden:
            x = nn.silu(nn.Dense(width)(x))
        return nn.Dense(1)(x)[:, 0]
