"""Fully general autoregressive model of binary vectors by conditional probability tables (CPTs).

A distribution over ``n`` binary pixels ``x_1..x_n`` (images flattened in row-major order) is
factorised by the chain rule, with no independence assumption:

.. math::
    p(x) = \\prod_{k=1}^{n} p(x_k \\mid x_1, \\ldots, x_{k-1}),

and every conditional is a free table entry. Pixel ``k`` has ``2^(k-1)`` contexts, so the model has
``2^n - 1`` parameters.

Tables in the exercise's nested-list formats are read and written by :mod:`jgen.autoregressive.cpt_io`.

**Flat layout.** Internally the tables are concatenated (each C-order raveled) into one vector
``probs [2^n - 1]`` of ``p(x_{k+1} = 1 | context)``. This is a binary heap: the entry for pixel
``k`` with context bits ``c = (x_1..x_k)`` read as a big-endian integer is ``2^k - 1 + c``, and the
next pixel's entry is ``2 * node + 1 + x_{k+1}``. Sampling therefore carries one integer per
sample through a ``lax.scan`` over pixels and gathers from the flat table.

**Memory.** ``probs`` holds ``2^n - 1`` float32 (4 bytes each); fitting by counting needs about
twice that in the dense formulation. :func:`fit_counts` refuses ``n > max_pixels`` (default 26,
i.e. 256 MiB of probabilities / 512 MiB with counts) with a message naming the memory needed.

References:
  Exercise: "conditional probability tables for 5x5 letters"; D. Barber, *Bayesian Reasoning and
  Machine Learning* (2012), ch. 9 (maximum likelihood for belief networks by counting, Laplace /
  Dirichlet smoothing).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "MAX_PIXELS",
    "num_pixels",
    "table_memory_bytes",
    "context_nodes",
    "fit_counts",
    "sample",
    "log_prob",
]

MAX_PIXELS = 26


def table_memory_bytes(n: int, *, with_counts: bool = True) -> int:
    """Bytes needed by a dense CPT over ``n`` pixels: ``2^n - 1`` float32 (x2 with counts)."""
    return 4 * ((2**n) - 1) * (2 if with_counts else 1)


def _human_bytes(b: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if b < 1000 or unit == "PiB":
            return f"{b:.1f} {unit}"
        b /= 1024
    return f"{b:.1f} PiB"


def _check_num_pixels(n: int, max_pixels: int) -> None:
    if n < 1:
        raise ValueError(f"need at least one pixel, got n = {n}")
    if n > max_pixels:
        raise ValueError(
            f"a full conditional probability table over n = {n} pixels has 2^{n} - 1 = {2**n - 1:,} entries: "
            f"{_human_bytes(table_memory_bytes(n, with_counts=False))} of float32 probabilities and about "
            f"{_human_bytes(table_memory_bytes(n))} while counting; this exceeds the limit max_pixels = "
            f"{max_pixels}. Use fewer pixels (e.g. downsample the images) or raise max_pixels if you have the memory.")


def num_pixels(probs) -> int:
    """Number of pixels ``n`` of a flat table ``probs [2^n - 1]`` (validates the length)."""
    size = int(np.shape(probs)[-1]) if np.ndim(probs) == 1 else -1
    n = int(round(math.log2(size + 1))) if size > 0 else 0
    if np.ndim(probs) != 1 or size < 1 or 2**n - 1 != size:
        raise ValueError(f"a flat CPT must be a 1-D array of length 2^n - 1 (1, 3, 7, 15, ...), got shape {np.shape(probs)}")
    return n


def _flatten_binary(x, what: str = "x"):
    """``[batch, *event] -> [batch, n]``; checks the leading batch axis exists."""
    if x.ndim < 2:
        raise ValueError(f"{what} must have shape [batch, n] or [batch, height, width], got {x.shape}")
    return x.reshape(x.shape[0], -1)


def context_nodes(x) -> jax.Array:
    """Heap indices of every pixel's conditional: ``x [batch, n]`` (0/1) -> ``int32 [batch, n]``.

    ``node[b, k] = 2^k - 1 + c`` where ``c`` is ``x[b, :k]`` read as a big-endian integer.
    """
    x = jnp.asarray(x)
    x = _flatten_binary(x)
    n = x.shape[1]
    if n > 30:
        raise ValueError(f"context indices overflow int32 above 30 pixels, got n = {n}")
    bits = x.astype(jnp.int32)
    code = bits @ (2 ** jnp.arange(n - 1, -1, -1, dtype=jnp.int32))  # all n bits, big-endian
    k = jnp.arange(n, dtype=jnp.int32)
    prefix = code[:, None] >> (n - k)  # first k bits
    return (1 << k) - 1 + prefix


def fit_counts(x, *, smoothing: float = 1.0, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Maximum-likelihood CPTs by counting, with Laplace (additive) smoothing.

    ``p(x_{k+1} = 1 | c) = (N_1(c) + smoothing) / (N(c) + 2 smoothing)`` where ``N(c)`` counts training
    vectors whose first ``k`` pixels equal the context ``c`` and ``N_1(c)`` those of them with pixel
    ``k + 1`` on. Unseen contexts get ``1/2`` (for ``smoothing > 0``), so held-out data never has zero
    probability. ``smoothing = 0`` is plain maximum likelihood (unseen contexts are then set to 1/2).

    Only visited contexts are counted (at most ``batch * n`` of them), so besides the output the
    memory is ``O(batch * n)``.

    Args:
      x: binary data ``[batch, n]`` or images ``[batch, height, width]`` (flattened row-major), values
        in ``{0, 1}`` (bool or integer).
      smoothing: Laplace pseudo-count per outcome, ``>= 0``.
      max_pixels: refuse more pixels than this (the table has ``2^n - 1`` entries).

    Returns:
      ``probs [2^n - 1]`` float32 in heap order (see module docstring).

    Raises:
      ValueError: non-binary data, negative ``smoothing``, or ``n > max_pixels`` (naming the memory needed).
    """
    x = np.asarray(x)
    x = _flatten_binary(x)
    if x.shape[0] == 0:
        raise ValueError("need at least one training vector, got batch size 0")
    if not np.all((x == 0) | (x == 1)):
        raise ValueError(f"x must be binary (values 0/1), found values {np.unique(x)[:6]}")
    if not smoothing >= 0:
        raise ValueError(f"smoothing must be a non-negative pseudo-count, got {smoothing}")
    n = x.shape[1]
    _check_num_pixels(n, max_pixels)
    nodes = np.asarray(context_nodes(x)).ravel()
    ones = x.astype(np.int64).ravel()
    visited, inverse = np.unique(nodes, return_inverse=True)
    total = np.bincount(inverse, minlength=visited.size)
    num_one = np.bincount(inverse, weights=ones, minlength=visited.size)
    probs = np.full(2**n - 1, 0.5, np.float32)
    probs[visited] = (num_one + smoothing) / (total + 2 * smoothing)
    return probs


@functools.partial(jax.jit, static_argnames=("num_samples",))
def sample(probs: jax.Array, key: jax.Array, num_samples: int) -> jax.Array:
    """Draws ``num_samples`` binary vectors from the CPT model (ancestral sampling).

    A ``lax.scan`` over the ``n`` pixels, vectorised over samples: each sample carries its heap index
    ``node`` (the context read as bits), draws ``x_k = u_k < probs[node]`` and moves to
    ``2 * node + 1 + x_k``.

    Args:
      probs: flat table ``[2^n - 1]`` (from :func:`fit_counts` or :func:`jgen.autoregressive.cpt_io.tables_to_flat`).
      key: PRNG key.
      num_samples: number of samples (static).

    Returns:
      ``uint8 [num_samples, n]`` in ``{0, 1}`` (reshape to ``[num_samples, h, w]`` for images).
    """
    n = num_pixels(probs)
    u = jax.random.uniform(key, (n, num_samples), dtype=probs.dtype)

    def step(node, u_k):
        x_k = u_k < probs[node]
        return 2 * node + 1 + x_k.astype(jnp.int32), x_k

    _, xs = jax.lax.scan(step, jnp.zeros(num_samples, jnp.int32), u)
    return xs.T.astype(jnp.uint8)


@jax.jit
def log_prob(probs: jax.Array, x: jax.Array) -> jax.Array:
    """Exact log-likelihood ``log p(x)`` in nats per vector.

    Args:
      probs: flat table ``[2^n - 1]``.
      x: binary data ``[batch, n]`` or images ``[batch, h, w]`` with ``h * w = n`` (row-major).

    Returns:
      ``[batch]`` log-probabilities in nats (divide by ``log 2`` for bits per image). Can be
      ``-inf`` when a table entry is exactly 0 or 1 against the data.
    """
    n = num_pixels(probs)
    x = _flatten_binary(jnp.asarray(x))
    if x.shape[1] != n:
        raise ValueError(f"x has {x.shape[1]} pixels per vector but the table is over n = {n}")
    p = probs[context_nodes(x)]
    on = x.astype(bool)
    return jnp.sum(jnp.where(on, jnp.log(p), jnp.log1p(-p)), axis=-1)
