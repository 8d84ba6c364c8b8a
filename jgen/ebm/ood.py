"""Out-of-distribution checks with an energy: AUROC by a rank statistic, and the blurred-digit shift."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

__all__ = ["auroc", "gaussian_blur"]


def auroc(in_scores: Any, out_scores: Any) -> float:
    """Area under the ROC curve of a score that should be higher in-distribution than out of it.

    The Mann-Whitney form: `P(s_in > s_out) + P(s_in = s_out) / 2` over all pairs, computed from average
    ranks of the pooled scores, `(R_in - n_in (n_in + 1) / 2) / (n_in n_out)`, in O(n log n). For an EBM the
    score is `-E(x)`: 1 means every in-distribution example has a lower energy than every outlier, 0.5 chance.

    Args:
      in_scores: `[n_in]` scores of in-distribution examples (the positives).
      out_scores: `[n_out]` scores of outliers.
    """
    a, b = np.asarray(in_scores, np.float64).ravel(), np.asarray(out_scores, np.float64).ravel()
    if not (len(a) and len(b)) or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError(f"auroc needs finite scores on both sides, got {len(a)} and {len(b)} scores "
                         f"({np.sum(~np.isfinite(a)) + np.sum(~np.isfinite(b))} non-finite)")
    ranks = stats.rankdata(np.concatenate([a, b]))
    return float((ranks[:len(a)].sum() - len(a) * (len(a) + 1) / 2) / (len(a) * len(b)))


def gaussian_blur(images: Any, sigma: float) -> jax.Array:
    """Blurs `[n, H, W]` or `[n, H, W, 1]` images with a Gaussian of std `sigma` pixels (edges replicated).

    A separable kernel of radius `ceil(3 sigma)`, normalised to sum 1 (flat images stay flat).
    """
    x = jnp.asarray(images, jnp.float32)
    squeeze = x.ndim == 4
    if squeeze:
        x = x[..., 0]
    radius = max(1, int(np.ceil(3 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k = jnp.asarray(k / k.sum(), jnp.float32)
    x = jnp.pad(x, ((0, 0), (radius, radius), (radius, radius)), mode="edge")
    h, w = x.shape[1] - 2 * radius, x.shape[2] - 2 * radius
    x = sum(k[i] * x[:, i:i + h, :] for i in range(len(k)))
    x = sum(k[i] * x[:, :, i:i + w] for i in range(len(k)))
    return x[..., None] if squeeze else x
