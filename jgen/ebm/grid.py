"""2-D EBMs where the answer is known: exp(-E) normalised on a grid, and its KL to the true density."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import logsumexp

__all__ = ["grid_points", "normalized_log_density", "grid_kl"]


def grid_points(xlim: tuple[float, float], ylim: tuple[float, float], n: int) -> np.ndarray:
    """`[n * n, 2]` pixel centres of an n x n grid, row-major from `(xlim[0], ylim[0])` (as `jgen.viz.density_grid`)."""
    xs = xlim[0] + (np.arange(n) + 0.5) * (xlim[1] - xlim[0]) / n
    ys = ylim[0] + (np.arange(n) + 0.5) * (ylim[1] - ylim[0]) / n
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], -1).astype(np.float32)


def normalized_log_density(log_unnormalized: Any, cell_area: float) -> np.ndarray:
    """Log-density (nats) normalised to integrate to 1 over the grid: `log f - log sum_cells f * area`.

    For an EBM, `log_unnormalized = -E(grid points)`; the grid's box is the support the density is
    normalised on (mass outside it is ignored for model and truth alike).
    """
    v = np.asarray(log_unnormalized, np.float64)
    return v - logsumexp(v) - np.log(cell_area)


def grid_kl(log_p: Any, log_q: Any, cell_area: float) -> float:
    """KL(p || q) in nats of two grid-normalised log-densities (`normalized_log_density`), summed over cells.

    Cells where p vanishes contribute nothing; q is never 0 for an EBM (exp(-E) > 0).
    """
    log_p, log_q = np.asarray(log_p, np.float64), np.asarray(log_q, np.float64)
    p = np.exp(log_p) * cell_area
    keep = p > 0
    return float(np.sum(p[keep] * (log_p[keep] - log_q[keep])))
