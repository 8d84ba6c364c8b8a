"""Noise-prediction networks eps_theta(x_t, t)."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["fourier_features", "DenoisingMLP"]

TIME_EMBEDDINGS = ("none", "linear", "fourier")


def fourier_features(x: jax.Array, num_frequencies: int, scale: float, seed: int) -> jax.Array:
    """Fixed random Fourier features [cos(2 pi x B), sin(2 pi x B)] (Tancik et al. 2020).

    B ~ N(0, scale^2) of shape [x.shape[-1], num_frequencies] is drawn from `seed` and never trained.

    Args:
      x: [batch, d]. Returns: [batch, 2 * num_frequencies].
    """
    b = scale * jax.random.normal(jax.random.PRNGKey(seed), (x.shape[-1], num_frequencies), x.dtype)
    proj = 2.0 * jnp.pi * x @ b
    return jnp.concatenate([jnp.cos(proj), jnp.sin(proj)], axis=-1)


class DenoisingMLP(nn.Module):
    """An MLP eps_theta(x_t, t) for low-dimensional data (the 2-D dino).

    Attributes:
      num_steps: T; t in 1..T is mapped to (t - 1) / (T - 1) in [0, 1].
      time_embedding: "none" (zero time input: the network cannot see t), "linear" (the scalar
        (t - 1) / (T - 1) concatenated), or "fourier" (random Fourier features of position and time).
      hidden: widths of the hidden ReLU layers.
      position_frequencies, time_frequencies: L for the Fourier features of x and t.
      position_scale, time_scale: std of the Gaussian frequency matrices B.
    """

    num_steps: int
    time_embedding: str = "fourier"
    hidden: Sequence[int] = (64, 64, 64)
    position_frequencies: int = 64
    time_frequencies: int = 32
    position_scale: float = 1.0
    time_scale: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array, t: jax.Array) -> jax.Array:
        """x: [batch, d] float; t: [batch] int in 1..T. Returns predicted noise [batch, d]."""
        if self.time_embedding not in TIME_EMBEDDINGS:
            raise ValueError(f"time_embedding must be one of {TIME_EMBEDDINGS}, got {self.time_embedding!r}")
        if x.ndim != 2 or t.shape != x.shape[:1]:
            raise ValueError(f"expected x [batch, d] and t [batch], got {x.shape} and {t.shape}")
        tau = ((t.astype(x.dtype) - 1.0) / max(self.num_steps - 1, 1))[:, None]
        if self.time_embedding == "none":
            h = jnp.concatenate([x, jnp.zeros_like(tau)], -1)
        elif self.time_embedding == "linear":
            h = jnp.concatenate([x, tau], -1)
        else:
            h = jnp.concatenate([
                fourier_features(x, self.position_frequencies, self.position_scale, seed=0),
                fourier_features(tau, self.time_frequencies, self.time_scale, seed=1)], -1)
        for width in self.hidden:
            h = nn.relu(nn.Dense(width)(h))
        return nn.Dense(x.shape[-1])(h)
