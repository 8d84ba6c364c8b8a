"""Pure preprocessing functions for image data (jax.numpy; numpy arrays are accepted too).

All functions are jittable except `letters_5x5`, whose output size depends on the labels. Shapes follow
the `jgen.data.load` layout `[..., height, width, channels]`.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "area_weights", "area_resize", "dequantize", "logit_transform", "inverse_logit_transform",
    "binarize_static", "binarize_dynamic", "to_unit", "to_pm1", "letters_5x5",
]


def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """Area-averaging matrix `A` of shape `[n_out, n_in]`: `A[i, j]` is the fraction of output cell `i`
    (the interval `[i, i+1) * n_in / n_out` in input pixels) covered by input pixel `[j, j+1)`.

    Rows sum to 1. For an integer factor `n_in = k * n_out` each row averages `k` consecutive pixels; for a
    non-integer factor (e.g. 16 -> 5, cells of 3.2 pixels) boundary pixels are split by their overlap, as in
    PIL's BOX filter / OpenCV's INTER_AREA.
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"sizes must be positive, got n_in={n_in}, n_out={n_out}")
    scale = n_in / n_out
    lo = np.arange(n_out)[:, None] * scale
    hi = lo + scale
    j = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0.0, None)
    return overlap / scale


def area_resize(images, size: int | Sequence[int]) -> jax.Array:
    """Resizes images by area averaging (each output pixel is the mean of the input area it covers).

    Args:
      images: `[..., H, W, C]` array (any real or integer dtype; uint8 is averaged as float).
      size: output `(h, w)`, or one int for a square output. E.g. MNIST 28 -> 14 or 7 (2x2 / 4x4 means).

    Returns:
      float array `[..., h, w, C]` (float32 unless the input is a wider float).
    """
    x = jnp.asarray(images)
    if x.ndim < 3:
        raise ValueError(f"images must have shape [..., H, W, C], got shape {x.shape}")
    h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    wh = jnp.asarray(area_weights(x.shape[-3], int(h)), x.dtype)
    ww = jnp.asarray(area_weights(x.shape[-2], int(w)), x.dtype)
    return jnp.einsum("...hwc,oh,pw->...opc", x, wh, ww, precision=jax.lax.Precision.HIGHEST)


def dequantize(key: jax.Array, x, num_levels: int = 256) -> jax.Array:
    """Uniform dequantisation: `(x + u) / num_levels` with `u ~ U[0, 1)` i.i.d. per element.

    Turns integer levels `0..num_levels-1` into a continuous density on `[0, 1)`; a density model's
    log-likelihood of the dequantised data lower-bounds the discrete log-likelihood (Theis, van den Oord &
    Bethge, "A note on the evaluation of generative models", ICLR 2016).

    Args:
      key: PRNG key.
      x: integer-valued array (e.g. uint8 pixels).
      num_levels: number of discrete levels (256 for 8-bit data).

    Returns:
      float32 array of `x`'s shape in `[0, 1)`.
    """
    x = jnp.asarray(x, jnp.float32)
    u = jax.random.uniform(key, x.shape, jnp.float32)
    return (x + u) / num_levels


def logit_transform(x, alpha: float = 0.05) -> tuple[jax.Array, jax.Array]:
    """`y = logit(alpha + (1 - 2 alpha) x)` and its log-Jacobian-determinant per example.

    Maps `[0, 1]` data to the real line away from the boundaries (RealNVP, Dinh et al. 2017, section 4.1).

    Args:
      x: `[batch, ...]` floats in `[0, 1]`.
      alpha: boundary margin in `(0, 0.5)`.

    Returns:
      `(y, log_det)`: `y` of `x`'s shape, `log_det` `[batch]` = sum over non-batch axes of
      `log(1 - 2 alpha) - log(s) - log(1 - s)` with `s = alpha + (1 - 2 alpha) x` (nats).
    """
    if not 0.0 <= alpha < 0.5:
        raise ValueError(f"alpha must lie in [0, 0.5), got {alpha}")
    x = jnp.asarray(x)
    if x.ndim < 1:
        raise ValueError("x must have a leading batch axis")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    s = alpha + (1.0 - 2.0 * alpha) * x
    y = jnp.log(s) - jnp.log1p(-s)
    ld = jnp.log1p(-2.0 * alpha) - jnp.log(s) - jnp.log1p(-s)
    return y, ld.reshape(x.shape[0], -1).sum(axis=1)


def inverse_logit_transform(y, alpha: float = 0.05) -> jax.Array:
    """Inverse of `logit_transform`: `x = (sigmoid(y) - alpha) / (1 - 2 alpha)`."""
    return (jax.nn.sigmoid(jnp.asarray(y)) - alpha) / (1.0 - 2.0 * alpha)


def binarize_static(x, threshold: float = 0.5) -> jax.Array:
    """Deterministic binarisation `x > threshold` (float32 0/1), for intensities in [0, 1]."""
    return (jnp.asarray(x) > threshold).astype(jnp.float32)


def binarize_dynamic(key: jax.Array, x) -> jax.Array:
    """Stochastic binarisation: each pixel is Bernoulli(x) (float32 0/1), resampled on every call
    (Salakhutdinov & Murray, "On the quantitative analysis of deep belief networks", ICML 2008)."""
    x = jnp.asarray(x, jnp.float32)
    return jax.random.bernoulli(key, x).astype(jnp.float32)


def to_unit(x) -> jax.Array:
    """uint8 0..255 -> float32 in [0, 1] (`x / 255`)."""
    return jnp.asarray(x, jnp.float32) / 255.0


def to_pm1(x) -> jax.Array:
    """uint8 0..255 -> float32 in [-1, 1] (`x / 127.5 - 1`)."""
    return jnp.asarray(x, jnp.float32) / 127.5 - 1.0


def letters_5x5(images, labels, *, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """5x5 binary letters A-Z made from Binary Alphadigits glyphs.

    Keeps the 26 letter classes (alphadigits labels 10..35), area-averages each 20x16 glyph to 5x5 with
    non-square cells (4 rows x 3.2 columns of input pixels each, see `area_weights`; no crop or pad, so the
    whole glyph is kept and its aspect ratio squeezed) and sets a pixel on where the cell's ink fraction
    exceeds `threshold`. The default 0.5 (a pixel is on when most of its cell is inked) keeps the fraction
    of on pixels (0.42 over the 1,014 letters) equal to the glyphs' own ink fraction (0.41); strokes are
    3-4 input pixels wide, about one 5x5 cell, so most letters stay legible.

    Args:
      images: `[N, 20, 16]` or `[N, 20, 16, 1]` glyphs in {0, 1} (`jgen.data.load("binary_alphadigits")`).
      labels: `[N]` alphadigits classes 0..35.
      threshold: ink fraction above which a 5x5 pixel is on.

    Returns:
      `(letters uint8[M, 5, 5] in {0, 1}, letter_labels int64[M] in 0..25 for A..Z)`, M = number of letters
      (1014 for the full data set, 39 per letter). Not jittable (M depends on `labels`).
    """
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1:] != (20, 16):
        raise ValueError(f"images must have shape [N, 20, 16] or [N, 20, 16, 1], got {np.shape(images)}")
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"got {x.shape[0]} images but {y.shape[0]} labels")
    keep = (y >= 10) & (y <= 35)
    small = np.asarray(area_resize(x[keep][..., None].astype(np.float32), (5, 5)))[..., 0]
    return (small > threshold).astype(np.uint8), y[keep] - 10
