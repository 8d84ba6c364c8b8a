"""Likelihoods in the units jgen reports: nats, bits, and bits per dimension on a discrete pixel scale.

A model of integer images ``k`` in ``{0, ..., L - 1}^D`` reports ``-log2 P(k) / D`` bits/dim. A continuous
density ``p(x)`` on the unit cube ``[0, 1)^D``, fitted to uniformly dequantised pixels ``x = (k + u) / L``,
gives the bound ``log P(k) >= E_u[log p(x)] - D log L`` (Jensen), so

    bits/dim = (-log p(x) / D + log L) / log 2

on one draw of ``u`` is an upper bound, in expectation, on the discrete bits/dim (Theis, van den Oord &
Bethge, 2016, "A note on the evaluation of generative models"). When the density is fitted in a
transformed space ``y = f(x)`` (e.g. the logit transform of Dinh et al., 2017, Sec. 4.1),
``log p(x) = log p(y) + log|det dy/dx|``.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

__all__ = ["LN2", "nats_to_bits", "bits_to_nats", "nats_to_bits_per_dim", "bits_per_dim",
           "independent_pixel_bits_per_dim"]

#: ``log 2``: nats per bit.
LN2 = math.log(2.0)


def nats_to_bits(nats):
    """``nats / log 2``: a log-likelihood (or NLL) in bits."""
    return nats / LN2


def bits_to_nats(bits):
    """``bits * log 2``: a log-likelihood (or NLL) in nats."""
    return bits * LN2


def nats_to_bits_per_dim(nll_nats, num_dims: int):
    """A negative log-likelihood per example in nats -> bits per dimension, ``nll / (D log 2)``.

    Args:
      nll_nats: ``[...]`` negative log-likelihood of each example, nats (a discrete model's ``-log P(k)``).
      num_dims: ``D``, pixels times channels.
    """
    if int(num_dims) < 1:
        raise ValueError(f"num_dims must be >= 1, got {num_dims}")
    return nll_nats / (num_dims * LN2)


def bits_per_dim(log_prob, log_det, num_dims: int, num_levels: int = 256):
    """Bits/dim on the ``num_levels``-level scale of a density of dequantised pixels in ``[0, 1)^D``.

    Args:
      log_prob: ``[batch]`` log-density in nats, in the space the model works in (``log p(y)``).
      log_det: ``[batch]`` ``log|det dy/dx|`` of the map from ``[0, 1)^D`` to that space, nats (0 when the
        model is on the unit cube itself).
      num_dims: ``D``, pixels times channels.
      num_levels: ``L``, intensity levels (256 for 8-bit).

    Returns:
      ``[batch]`` bits/dim, ``(-(log_prob + log_det) / D + log L) / log 2``: an upper bound in expectation
      over the dequantisation noise on the discrete bits/dim.
    """
    log_p_unit = log_prob + log_det
    return (-log_p_unit / num_dims + jnp.log(num_levels)) / jnp.log(2.0)


def independent_pixel_bits_per_dim(train: np.ndarray, test: np.ndarray, num_levels: int = 256,
                                   smoothing: float = 1.0) -> float:
    """Exact discrete bits/dim of a per-pixel independent categorical model: the baseline every image model beats.

    Each pixel gets its own categorical over ``num_levels`` values, fitted by counts with additive (Laplace)
    smoothing: ``P_i(k) = (count_i(k) + smoothing) / (N + smoothing * num_levels)``.

    Args:
      train: integer ``[N, ...]`` training images.
      test: integer ``[M, ...]`` held-out images of the same shape.
      num_levels: number of values per pixel.
      smoothing: pseudo-count added to every value (> 0 keeps the test NLL finite).

    Returns:
      Mean over test images and pixels of ``-log2 P_i(test value)``.
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
