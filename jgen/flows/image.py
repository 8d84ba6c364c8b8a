"""Flows on 8-bit images: uniform dequantisation, logit transform and bits/dim.

Dequantisation: a pixel with integer value k in {0, ..., 255} becomes
x = (k + u) / 256 with u ~ U[0, 1), so x lies in [0, 1) and every image is a
cube of volume 256^-D in the unit cube. The flow models y = logit(alpha +
(1 - 2 alpha) x) and the density of x is p(x) = p_flow(y) |det dy/dx|. By
Jensen, the discrete log-likelihood is bounded by

    log P(k) >= E_u[log p(x)] - D log 256,

so the bits/dim reported here, -(log p(x) - D log 256) / (D log 2) on one
draw of u, is an upper bound (in expectation) on the exact discrete bits/dim
on the 8-bit scale (Theis, van den Oord & Bethge, 2016, "A note on the
evaluation of generative models"; Dinh et al., 2017, Sec. 4.1 for the logit).
"""

from typing import Tuple

import jax.numpy as jnp
import numpy as np

from jgen.data import preprocess

__all__ = ["dequantize_logit", "logit_to_levels", "bits_per_dim", "independent_pixel_bits_per_dim"]

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


def bits_per_dim(log_prob_logit: Array, log_det_logit: Array, num_dims: int,
                 num_levels: int = 256) -> Array:
    """Bits/dim on the `num_levels`-level scale from a logit-space density.

    Args:
      log_prob_logit: `[batch]` flow log-density of y, nats.
      log_det_logit: `[batch]` `log|det dy/dx|` of the logit transform, nats.
      num_dims: D, the number of pixels times channels.
      num_levels: intensity levels (256).

    Returns:
      `[batch]` bits/dim, `(-(log p_flow(y) + log_det) / D + log num_levels) / log 2`.
    """
    log_p_unit = log_prob_logit + log_det_logit
    return (-log_p_unit / num_dims + jnp.log(num_levels)) / jnp.log(2.0)


def independent_pixel_bits_per_dim(train: np.ndarray, test: np.ndarray, num_levels: int = 256,
                                   smoothing: float = 1.0) -> float:
    """Exact discrete bits/dim of a per-pixel independent categorical model.

    Each pixel gets its own categorical over `num_levels` values, fitted by
    counts with additive (Laplace) smoothing:
    `P_i(k) = (count_i(k) + smoothing) / (N + smoothing * num_levels)`.

    Args:
      train: integer `[N, ...]` training images.
      test: integer `[M, ...]` held-out images of the same shape.
      num_levels: number of values per pixel.
      smoothing: pseudo-count added to every value (> 0 keeps test NLL finite).

    Returns:
      Mean over test images and pixels of `-log2 P_i(test value)`.
    """
    train = np.asarray(train).reshape(len(train), -1).astype(np.int64)
    test = np.asarray(test).reshape(len(test), -1).astype(np.int64)
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"train and test images must have the same size; got {train.shape[1]} and "
                         f"{test.shape[1]} pixels.")
    if smoothing <= 0:
        raise ValueError(f"smoothing must be positive; got {smoothing}.")
    for name, a in (("train", train), ("test", test)):
        if a.min() < 0 or a.max() >= num_levels:
            raise ValueError(f"{name} values must lie in 0..{num_levels - 1}; got range {a.min()}..{a.max()}.")
    d = train.shape[1]
    counts = np.zeros((d, num_levels))
    np.add.at(counts, (np.broadcast_to(np.arange(d), train.shape), train), 1.0)
    log_p = np.log(counts + smoothing) - np.log(len(train) + smoothing * num_levels)
    return float(-log_p[np.arange(d)[None, :], test].mean() / np.log(2.0))
