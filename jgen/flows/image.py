"""Flows on 8-bit images: uniform dequantisation into logit space, and back to pixel levels.

Dequantisation: a pixel with integer value k in {0, ..., 255} becomes
x = (k + u) / 256 with u ~ U[0, 1), so x lies in [0, 1) and every image is a
cube of volume 256^-D in the unit cube. The flow models y = logit(alpha +
(1 - 2 alpha) x) and the density of x is p(x) = p_flow(y) |det dy/dx| (Dinh et
al., 2017, Sec. 4.1). Bits/dim from (log p_flow(y), log|det dy/dx|) are
`jgen.metrics.likelihood.bits_per_dim`.
"""

from typing import Tuple

import jax.numpy as jnp

from jgen.data import preprocess

__all__ = ["dequantize_logit", "logit_to_levels"]

Array = jnp.ndarray


def dequantize_logit(key: Array, images: Array, alpha: float = 0.05,
                     num_levels: int = 256) -> Tuple[Array, Array]:
    """Uniformly dequantise integer images and map them to logit space.

    Args:
      key: PRNG key for the dequantisation noise.
      images: integer `[batch, H, W, C]` with values in `0 .. num_levels - 1`.
      alpha: logit margin, `y = logit(alpha + (1 - 2 alpha) x)`.
      num_levels: number of intensity levels (256 for 8-bit).

    Returns:
      `y [batch, H, W, C]` (float32) and `log|det dy/dx| [batch]` in nats, with
      x = (images + u) / num_levels.
    """
    x = preprocess.dequantize(key, images, num_levels=num_levels)
    return preprocess.logit_transform(x, alpha=alpha)


def logit_to_levels(y: Array, alpha: float = 0.05, num_levels: int = 256) -> Array:
    """Inverse of `dequantize_logit` up to the noise: logit-space samples -> uint8 levels."""
    x = preprocess.inverse_logit_transform(y, alpha=alpha)
    return jnp.clip(jnp.floor(x * num_levels), 0, num_levels - 1).astype(jnp.uint8)
