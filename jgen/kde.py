"""Kernel density estimation with a full bandwidth matrix: exact (chunked, logsumexp) or binned (FFT).

    kde = fit(points, bandwidth="scott")          # KDE(points [N, D], bandwidth H [D, D], log_weights [N])
    lp = log_prob(kde, x)                          # [M] log f_hat(x), nats
    axes, dens = binned_density(kde, lower, upper, num_bins)   # density on a regular grid, O(G log G)

The estimate is

    f_hat(x) = sum_i w_i |det H|^{-1} K(H^{-1} (x - x_i)),      sum_i w_i = 1  (w_i = 1 / N by default),

with a standard kernel K on R^D: "gaussian" K(u) = (2 pi)^{-D/2} exp(-|u|^2 / 2) or "epanechnikov"
K(u) = (D + 2) / (2 V_D) (1 - |u|^2)_+ (V_D the volume of the unit ball).

Bandwidth convention. H scales like a standard deviation: with the Gaussian kernel each term is the normal
density N(x; x_i, H H^T). scipy (`scipy.stats.gaussian_kde`, `jax.scipy.stats.gaussian_kde`) parametrises the
same estimate by the kernel *covariance* Sigma = `kde.covariance` = factor^2 * Cov(data); the two agree when

    Sigma = H H^T,   e.g. H = cholesky(Sigma) = factor * cholesky(Cov(data))   (what `rule_bandwidth` returns).

For radially symmetric kernels (both here) f_hat depends on H only through H H^T: H and H Q give the same
estimate for any orthogonal Q. In one dimension H = h is the kernel's standard deviation (Gaussian) or its
half-width (Epanechnikov, whose variance is h^2 / (D + 4) in general: Cov = H H^T / (D + 4)). The Scott and
Silverman rules are derived for the Gaussian kernel; with Epanechnikov, multiply H by sqrt(D + 4) to match
the kernel variance.

Exact evaluation is O(N M D) but memory O(chunk N): query points are processed `chunk_size` at a time with
`lax.map`; each chunk computes squared distances in whitened coordinates u = H^{-1} x and a fused logsumexp
(one exp-sum pass over [chunk, N] with terms <= 1; a max-shifted second pass only for chunks whose sums
underflow, i.e. queries many bandwidths away from all data). In high dimension the distances come from one matmul,
|u - v|^2 = |u|^2 + |v|^2 - 2 u.v. In float32 that form cancels catastrophically when |u|, |v| >> |u - v|, so
both are recentred on each chunk's mean query first (the error then scales with the chunk's spread). In low
dimension (D <= 4, e.g. 2-D grids) explicit per-coordinate differences cost no more than the GEMM, fuse into
the same passes, and have no cancellation at all, so they are the default there (`method`).

Binned evaluation (Wand 1994; Silverman 1982) spreads each point's weight linearly over the 2^D surrounding
grid nodes and convolves the grid counts with the kernel sampled at the grid offsets, by FFT; its error is
O(delta^2 / h^2) for grid spacing delta.

References:
  Silverman, "Density Estimation for Statistics and Data Analysis", 1986 (rules, binning).
  Scott, "Multivariate Density Estimation", 1992 (Scott's rule n^{-1/(D+4)}).
  Wand, "Fast computation of multivariate kernel estimators", JCGS 1994 (linear binning + FFT).
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = [
    "KDE",
    "KERNELS",
    "RULES",
    "METHODS",
    "fit",
    "log_prob",
    "density",
    "sample",
    "scott_factor",
    "silverman_factor",
    "rule_bandwidth",
    "weighted_covariance",
    "grid_nodes",
    "binned_density",
    "default_chunk_size",
]

Array = jax.Array
KERNELS = ("gaussian", "epanechnikov")
RULES = ("scott", "silverman")
METHODS = ("auto", "direct", "matmul")
# Up to this dimension per-coordinate differences cost no more than the GEMM and avoid its cancellation.
_MAX_DIRECT_DIM = 4
# Elements of one [chunk, N] block of the exact evaluation (2^21 float32 = 8 MiB).
_BLOCK_ELEMENTS = 2**21


class KDE(NamedTuple):
    """A fitted kernel density estimate (a pytree of arrays; `fit` builds it).

    Attributes:
      points: [N, D] data points x_i.
      bandwidth: [D, D] bandwidth matrix H: the kernel at x is K(H^{-1}(x - x_i)) / |det H|. Gaussian kernel
        covariance (scipy's `covariance`) is H H^T.
      log_weights: [N] log w_i, normalised so that logsumexp(log_weights) = 0.
    """

    points: Array
    bandwidth: Array
    log_weights: Array


# --------------------------------------------------------------------------- validation helpers


def _is_concrete(x) -> bool:
    """False for values being traced (inside jit/vmap), where data-dependent checks are skipped."""
    try:
        np.asarray(x)
        return True
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return False


def _check_finite(x, name: str) -> None:
    """Refuses NaN/Inf in concrete data (traced values, inside jit, are not checked)."""
    if not _is_concrete(x):
        return
    bad = ~np.isfinite(np.asarray(x))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        count = f"{int(bad.sum())} non-finite value" + ("s" if bad.sum() > 1 else "")
        raise ValueError(f"{name} holds {count} (NaN or Inf), the first at index {where}; a KDE needs finite "
                         f"{name}: drop those rows")


def _check_kernel(kernel: str) -> None:
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")


def _as_points(points) -> Array:
    points = jnp.asarray(points)
    if points.ndim == 1:
        points = points[:, None]
    if points.ndim != 2 or points.shape[0] < 1 or points.shape[1] < 1:
        raise ValueError(f"points must have shape [N, D] (or [N] for D = 1) with N, D >= 1, got {points.shape}")
    if not jnp.issubdtype(points.dtype, jnp.floating):
        points = points.astype(jnp.float32)
    _check_finite(points, "points")
    return points


def _as_queries(x, dim: int) -> Array:
    x = jnp.asarray(x)
    if x.ndim == 1 and dim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"x must have shape [M, {dim}] (the data dimension D = {dim}"
                         f"{'; [M] is accepted for D = 1' if dim == 1 else ''}), got {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    _check_finite(x, "x")
    return x


def _normalised_log_weights(weights, n: int, dtype) -> Array:
    if weights is None:
        return jnp.full((n,), -math.log(n), dtype)
    weights = jnp.asarray(weights, dtype)
    if weights.shape != (n,):
        raise ValueError(f"weights must have shape [N] = [{n}] (one per point), got {weights.shape}")
    _check_finite(weights, "weights")
    if _is_concrete(weights) and (bool(jnp.any(weights < 0)) or not float(jnp.sum(weights)) > 0):
        raise ValueError("weights must be non-negative with a positive sum")
    return jnp.log(weights) - jnp.log(jnp.sum(weights))


def _check_kde(kde: KDE) -> tuple[int, int]:
    if not isinstance(kde, KDE):
        raise TypeError(f"expected a jgen.kde.KDE (from jgen.kde.fit), got {type(kde).__name__}")
    n, d = kde.points.shape
    if kde.bandwidth.shape != (d, d) or kde.log_weights.shape != (n,):
        raise ValueError(f"inconsistent KDE: points {kde.points.shape}, bandwidth {kde.bandwidth.shape} "
                         f"(expected ({d}, {d})), log_weights {kde.log_weights.shape} (expected ({n},))")
    return n, d


# --------------------------------------------------------------------------- bandwidth rules


def scott_factor(n_eff, dim: int):
    """Scott's rule factor n_eff^{-1/(D+4)} (scipy's `gaussian_kde.scotts_factor`)."""
    return n_eff ** (-1.0 / (dim + 4))


def silverman_factor(n_eff, dim: int):
    """Silverman's rule factor (n_eff (D+2) / 4)^{-1/(D+4)} (scipy's `gaussian_kde.silverman_factor`)."""
    return (n_eff * (dim + 2) / 4.0) ** (-1.0 / (dim + 4))


def weighted_covariance(points, log_weights) -> Array:
    """Unbiased weighted covariance [D, D], as `np.cov(points.T, aweights=w)`: sum w (x - m)(x - m)^T / (1 - sum w^2).

    Args:
      points: [N, D].
      log_weights: [N], normalised (logsumexp = 0).
    """
    w = jnp.exp(log_weights)
    mean = w @ points
    centred = points - mean
    return (centred.T * w) @ centred / (1.0 - jnp.sum(w**2))


def rule_bandwidth(points, rule: str = "scott", weights=None) -> Array:
    """Rule-of-thumb bandwidth matrix H = factor * cholesky(Cov(data)), lower triangular [D, D].

    H H^T equals scipy's `gaussian_kde(points.T, bw_method=rule, weights=weights).covariance`: the factor is
    `scott_factor` or `silverman_factor` of the effective sample size n_eff = 1 / sum w_i^2 (N unweighted) and
    Cov is the unbiased (weighted) data covariance.

    Args:
      points: [N, D] (or [N]), N >= 2 with a non-singular covariance.
      rule: "scott" or "silverman".
      weights: optional [N] non-negative weights.

    Returns:
      H, [D, D].
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    points = _as_points(points)
    n, d = points.shape
    if n < 2:
        raise ValueError(f"a bandwidth rule needs at least 2 points to estimate a covariance, got N = {n}")
    log_w = _normalised_log_weights(weights, n, points.dtype)
    n_eff = 1.0 / jnp.sum(jnp.exp(2 * log_w))
    factor = scott_factor(n_eff, d) if rule == "scott" else silverman_factor(n_eff, d)
    chol = jnp.linalg.cholesky(weighted_covariance(points, log_w))
    if _is_concrete(chol) and not bool(jnp.all(jnp.isfinite(chol))):
        raise ValueError("the data covariance is singular (points lie in a lower-dimensional subspace); "
                         "pass an explicit bandwidth instead of a rule")
    return factor * chol


def _bandwidth_matrix(bandwidth, points: Array, weights) -> Array:
    n, d = points.shape
    if isinstance(bandwidth, str):
        return rule_bandwidth(points, bandwidth, weights)
    h = jnp.asarray(bandwidth, points.dtype)
    kind = h.ndim
    if h.ndim == 0:
        h = h * jnp.eye(d, dtype=points.dtype)
    elif h.shape == (d,):
        h = jnp.diag(h)
    elif h.shape != (d, d):
        raise ValueError(f"bandwidth must be 'scott', 'silverman', a scalar h (H = h I), a vector [D] = [{d}] "
                         f"(diagonal H) or a matrix [D, D] = [{d}, {d}], got shape {h.shape}")
    if _is_concrete(h):
        hn = np.asarray(h, np.float64)
        if kind < 2 and not np.all(np.diag(hn) > 0):
            raise ValueError(f"scalar/diagonal bandwidths are per-axis standard deviations and must be positive, "
                             f"got {np.asarray(bandwidth)}")
        if not np.all(np.isfinite(hn)) or abs(np.linalg.det(hn)) == 0.0:
            raise ValueError(f"bandwidth matrix H must be finite and invertible, got {hn.tolist()}")
    return h


def fit(points, bandwidth: Any = "scott", *, weights=None) -> KDE:
    """Builds a KDE from data.

    Args:
      points: [N, D] data (or [N] for D = 1).
      bandwidth: "scott" | "silverman" (rule of thumb, see `rule_bandwidth`), a scalar h (H = h I), a vector
        [D] (H = diag) or the full matrix H [D, D] (standard-deviation scale: kernel covariance H H^T). A scalar
        or vector holds standard deviations and must be positive; a matrix may be any finite invertible H, and
        since only H H^T matters, negative entries are allowed there and equivalent to flipping signs (the
        matrix diag(-0.3, 0.5) gives the same estimate as the vector (0.3, 0.5)).
      weights: optional [N] non-negative weights (normalised here).

    Returns:
      KDE(points, bandwidth H, log_weights).
    """
    points = _as_points(points)
    n, _ = points.shape
    h = _bandwidth_matrix(bandwidth, points, weights)
    return KDE(points, h, _normalised_log_weights(weights, n, points.dtype))


# --------------------------------------------------------------------------- exact evaluation


def default_chunk_size(num_points: int, num_queries: int) -> int:
    """Queries per chunk: a power of two in [8, 256] keeping one [chunk, N] block under 2^21 elements.

    Larger chunks bring no speed (the work is N x M exps either way) but cost cache and memory.
    """
    chunk = 2 ** int(math.floor(math.log2(max(1, _BLOCK_ELEMENTS // max(1, num_points)))))
    return int(max(1, min(max(8, min(chunk, 256)), num_queries)))


def _log_kernel_const(kernel: str, dim: int) -> float:
    if kernel == "gaussian":
        return -0.5 * dim * math.log(2.0 * math.pi)
    log_unit_ball = 0.5 * dim * math.log(math.pi) - math.lgamma(0.5 * dim + 1.0)
    return math.log((dim + 2) / 2.0) - log_unit_ball


def _chunk_sq_dist(q: Array, p: Array, method: str) -> Array:
    """|q_j - p_i|^2 for a chunk q [C, D] and whitened data p [N, D] -> [C, N]."""
    if method == "direct":
        # One fused elementwise loop over [C, N] per coordinate; no [C, N, D] intermediate, no cancellation.
        sq = jnp.zeros((q.shape[0], p.shape[0]), q.dtype)
        for k in range(q.shape[1]):
            sq = sq + (q[:, k:k + 1] - p[None, :, k]) ** 2
        return sq
    # |q|^2 + |p|^2 - 2 q.p, recentred on the chunk so that the cancellation error scales with its spread.
    centre = jnp.mean(q, axis=0)
    q = q - centre
    p = p - centre
    cross = jnp.matmul(q, p.T, precision=lax.Precision.HIGHEST)  # full f32 on accelerators too
    return jnp.maximum(jnp.sum(q**2, -1)[:, None] + jnp.sum(p**2, -1) - 2.0 * cross, 0.0)


def _chunk_log_sum(q: Array, p: Array, log_w: Array, kernel: str, method: str) -> Array:
    """log sum_i w_i k(q_j - p_i) for one chunk q [C, D] against whitened data p [N, D]; k unnormalised.

    Gaussian: one fused pass sum_i exp(log w_i - max log w - |q_j - p_i|^2 / 2), every term <= 1, so it cannot
    overflow; only queries so far from all data that the sum underflows towards the smallest normal numbers
    take a second, max-shifted logsumexp (two passes over the block), and only in chunks that contain one.
    """
    sq = _chunk_sq_dist(q, p, method)
    if kernel == "epanechnikov":
        return jnp.log(jnp.sum(jnp.exp(log_w) * jnp.maximum(1.0 - sq, 0.0), axis=-1))
    shift = jnp.max(log_w)
    total = jnp.sum(jnp.exp((log_w - shift) - 0.5 * sq), axis=-1)
    finfo = jnp.finfo(total.dtype)
    ok = total > finfo.tiny / finfo.eps  # below this the sum has lost relative precision to denormals

    def stable():
        a = log_w - 0.5 * sq
        m = jnp.max(a, axis=-1)
        lse = m + jnp.log(jnp.sum(jnp.exp(a - m[:, None]), axis=-1))
        return jnp.where(ok, jnp.log(total) + shift, lse)

    return lax.cond(jnp.all(ok), lambda: jnp.log(total) + shift, stable)


@functools.partial(jax.jit, static_argnames=("kernel", "chunk_size", "method"))
def _log_prob(kde: KDE, x: Array, kernel: str, chunk_size: int, method: str) -> Array:
    points, h, log_w = kde
    m, d = x.shape
    h_inv = jnp.linalg.inv(h)
    _, log_det = jnp.linalg.slogdet(h)
    centre = jnp.exp(log_w) @ points  # whitened coordinates around the data mean keep |u| small
    p = (points - centre) @ h_inv.T
    q = (x - centre) @ h_inv.T
    pad = (-m) % chunk_size
    chunks = jnp.pad(q, ((0, pad), (0, 0)), mode="edge").reshape(-1, chunk_size, d)
    out = lax.map(lambda c: _chunk_log_sum(c, p, log_w, kernel, method), chunks).reshape(-1)[:m]
    return out + _log_kernel_const(kernel, d) - log_det


def log_prob(kde: KDE, x, *, kernel: str = "gaussian", chunk_size: int | None = None,
             method: str = "auto") -> Array:
    """Exact log f_hat(x) (nats), evaluated `chunk_size` query points at a time.

    Memory is O(chunk_size * N) whatever M is (one [chunk_size, N] block per `lax.map` step).

    Args:
      kde: from `fit`.
      x: [M, D] query points (or [M] for D = 1).
      kernel: "gaussian" or "epanechnikov" (log 0 = -inf outside the Epanechnikov support).
      chunk_size: queries per chunk (static); default `default_chunk_size(N, M)`.
      method: squared distances in whitened coordinates by "direct" differences (D unrolled fused passes;
        float32-exact; default for D <= 4) or by "matmul" |u|^2 + |v|^2 - 2 u.v (one GEMM; default for D > 4,
        where it is faster; in float32 its error grows with the spread of each chunk of queries).

    Returns:
      [M] log densities.
    """
    _check_kernel(kernel)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    n, d = _check_kde(kde)
    x = _as_queries(x, d)
    m = x.shape[0]
    dtype = jnp.result_type(kde.points.dtype, x.dtype)
    if m == 0:
        return jnp.zeros((0,), dtype)
    if chunk_size is None:
        chunk_size = default_chunk_size(n, m)
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
    if method == "auto":
        method = "direct" if d <= _MAX_DIRECT_DIM else "matmul"
    kde = KDE(*(jnp.asarray(a, dtype) for a in kde))
    return _log_prob(kde, x.astype(dtype), kernel, int(chunk_size), method)


def density(kde: KDE, x, *, kernel: str = "gaussian", chunk_size: int | None = None,
            method: str = "auto") -> Array:
    """Exact f_hat(x) = exp(log_prob(kde, x)), [M]."""
    return jnp.exp(log_prob(kde, x, kernel=kernel, chunk_size=chunk_size, method=method))


def sample(kde: KDE, key: Array, num_samples: int, *, kernel: str = "gaussian") -> Array:
    """Draws num_samples points from f_hat: x = x_I + H u with I ~ Categorical(w), u ~ K.

    Epanechnikov u: the first D coordinates of a uniform point in the unit ball of R^{D+2}, whose marginal
    density is proportional to (1 - |u|^2)_+.

    Returns:
      [num_samples, D] samples.
    """
    _check_kernel(kernel)
    _, d = _check_kde(kde)
    k_idx, k_u, k_r = jax.random.split(key, 3)
    idx = jax.random.categorical(k_idx, kde.log_weights, shape=(num_samples,))
    dtype = kde.points.dtype
    if kernel == "gaussian":
        u = jax.random.normal(k_u, (num_samples, d), dtype)
    else:
        g = jax.random.normal(k_u, (num_samples, d + 2), dtype)
        radius = jax.random.uniform(k_r, (num_samples, 1), dtype) ** (1.0 / (d + 2))
        u = (g / jnp.linalg.norm(g, axis=-1, keepdims=True) * radius)[:, :d]
    return kde.points[idx] + u @ kde.bandwidth.T


# --------------------------------------------------------------------------- binned (FFT) evaluation


def grid_nodes(lower: Sequence[float], upper: Sequence[float], num_bins: Sequence[int]
               ) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Nodes of a regular grid, end points included.

    Returns:
      (axes, points): axes[d] = linspace(lower[d], upper[d], num_bins[d]); points [prod(num_bins), D] in
      'ij' order (the last coordinate varies fastest), so `values.reshape(num_bins)[i, j]` is at
      (axes[0][i], axes[1][j]).
    """
    lower, upper, num_bins = _grid_spec(lower, upper, num_bins)
    axes = tuple(np.linspace(lo, hi, k) for lo, hi, k in zip(lower, upper, num_bins))
    mesh = np.meshgrid(*axes, indexing="ij")
    return axes, np.stack([m.ravel() for m in mesh], axis=-1)


def _grid_spec(lower, upper, num_bins, dim: int | None = None):
    lower = np.atleast_1d(np.asarray(lower, np.float64))
    upper = np.atleast_1d(np.asarray(upper, np.float64))
    num_bins = np.atleast_1d(np.asarray(num_bins))
    d = dim if dim is not None else lower.size
    if num_bins.size == 1:
        num_bins = np.repeat(num_bins, d)
    if lower.shape != (d,) or upper.shape != (d,) or num_bins.shape != (d,):
        raise ValueError(f"lower, upper and num_bins must each have D = {d} entries, got shapes "
                         f"{lower.shape}, {upper.shape}, {num_bins.shape}")
    if not np.all(upper > lower):
        raise ValueError(f"upper must exceed lower in every dimension, got lower={lower}, upper={upper}")
    if not np.all(num_bins >= 2):
        raise ValueError(f"num_bins must be >= 2 per dimension, got {num_bins}")
    return lower, upper, tuple(int(k) for k in num_bins)


def _linear_binning(points: Array, log_w: Array, lower: Array, delta: Array, shape: tuple[int, ...]) -> Array:
    """Grid counts: each point's weight spread over its 2^D surrounding nodes (weights = products of
    1 - distance in cell units). Points outside the grid are dropped."""
    t = (points - lower) / delta
    i0 = jnp.floor(t)
    frac = t - i0
    i0 = i0.astype(jnp.int32)
    w = jnp.exp(log_w)
    dims = jnp.asarray(shape, jnp.int32)
    grid = jnp.zeros(shape, points.dtype)
    for corner in itertools.product((0, 1), repeat=len(shape)):
        c = jnp.asarray(corner, jnp.int32)
        idx = i0 + c
        wc = w * jnp.prod(jnp.where(c == 1, frac, 1.0 - frac), axis=-1)
        inside = jnp.all((idx >= 0) & (idx < dims), axis=-1)
        idx = jnp.clip(idx, 0, dims - 1)
        grid = grid.at[tuple(idx.T)].add(jnp.where(inside, wc, 0.0))
    return grid


@functools.partial(jax.jit, static_argnames=("shape", "radius", "kernel", "fft_shape"))
def _binned(kde: KDE, lower: Array, delta: Array, shape, radius, kernel: str, fft_shape) -> Array:
    points, h, log_w = kde
    d = len(shape)
    counts = _linear_binning(points, log_w, lower, delta, shape)
    offsets = [jnp.arange(-r, r + 1, dtype=points.dtype) * delta[i] for i, r in enumerate(radius)]
    u = jnp.stack(jnp.meshgrid(*offsets, indexing="ij"), axis=-1)  # [2r_1 + 1, ..., D]
    v = u @ jnp.linalg.inv(h).T
    sq = jnp.sum(v**2, axis=-1)
    stencil = jnp.exp(-0.5 * sq) if kernel == "gaussian" else jnp.maximum(1.0 - sq, 0.0)
    stencil = stencil * jnp.exp(_log_kernel_const(kernel, d) - jnp.linalg.slogdet(h)[1])
    axes = tuple(range(d))
    conv = jnp.fft.irfftn(jnp.fft.rfftn(counts, fft_shape, axes) * jnp.fft.rfftn(stencil, fft_shape, axes),
                          fft_shape, axes)
    out = conv[tuple(slice(r, r + k) for r, k in zip(radius, shape))]
    return jnp.maximum(out, 0.0)  # FFT round-off can leave tiny negatives where the density is ~0


def binned_density(kde: KDE, lower: Sequence[float], upper: Sequence[float], num_bins, *,
                   kernel: str = "gaussian", cutoff: float = 6.0, binning_correction: bool = True
                   ) -> tuple[tuple[np.ndarray, ...], Array]:
    """f_hat on the nodes of a regular grid by linear binning and FFT convolution (Wand 1994).

    Cost O(N 2^D + G log G) for G grid nodes, independent of N x G. Binning error is O(delta^2 / h^2) in grid
    spacing delta; the grid must cover the data (points outside it are dropped) and should extend a few
    bandwidths beyond it, since the convolution is not periodic but stops at the grid edge. H must be concrete
    (not traced): the kernel stencil's size depends on it.

    Binning correction (Gaussian kernel). Linear binning evaluates, for each point, the linear interpolant of
    the kernel between grid nodes, which overestimates it by t (1 - t) delta^2 / 2 times its curvature at
    fractional position t; averaged over t this is (delta^2 / 12) Laplacian f_hat, i.e. the kernel covariance
    grows by diag(delta^2 / 6). Sampling the stencil with covariance H H^T - diag(delta^2 / 6) cancels that
    leading term (about 10x smaller error at delta / h ~ 0.1); it is skipped when that matrix is not positive
    definite (grid too coarse for the bandwidth).

    Args:
      kde: from `fit`.
      lower, upper: [D] grid corners (nodes included).
      num_bins: nodes per dimension, int or [D].
      kernel: "gaussian" or "epanechnikov".
      cutoff: the Gaussian stencil extends cutoff kernel standard deviations per axis (truncation error
        <= exp(-cutoff^2 / 2) of the peak, 1.5e-8 for 6); Epanechnikov uses its exact support.
      binning_correction: Gaussian only: shrink the stencil covariance by diag(delta^2 / 6) (see above).

    Returns:
      (axes, density): axes as in `grid_nodes`; density [num_bins...] with density[i, j] at
      (axes[0][i], axes[1][j]) (transpose for [ny, nx] image plots).
    """
    _check_kernel(kernel)
    _, d = _check_kde(kde)
    lower, upper, shape = _grid_spec(lower, upper, num_bins, d)
    if not _is_concrete(kde.bandwidth):
        raise ValueError("binned_density needs a concrete bandwidth H (the stencil size depends on it); "
                         "call it outside jit")
    delta = (upper - lower) / (np.asarray(shape) - 1)
    h = np.asarray(kde.bandwidth, np.float64)
    if kernel == "gaussian" and binning_correction:
        try:
            h = np.linalg.cholesky(h @ h.T - np.diag(delta**2 / 6.0))
            kde = kde._replace(bandwidth=jnp.asarray(h, kde.bandwidth.dtype))
        except np.linalg.LinAlgError:
            pass  # grid spacing comparable to the bandwidth: no correction
    axis_scale = np.sqrt(np.sum(h**2, axis=1))  # max |u_d| over |H^{-1} u| <= 1
    reach = cutoff if kernel == "gaussian" else 1.0
    radius = tuple(int(min(k - 1, math.ceil(reach * s / dl))) for k, s, dl in zip(shape, axis_scale, delta))
    from scipy import fft as sp_fft  # next_fast_len: static FFT sizes with small prime factors

    fft_shape = tuple(int(sp_fft.next_fast_len(k + 2 * r, real=True)) for k, r in zip(shape, radius))
    dtype = kde.points.dtype
    axes = tuple(np.linspace(lo, hi, k) for lo, hi, k in zip(lower, upper, shape))
    out = _binned(kde, jnp.asarray(lower, dtype), jnp.asarray(delta, dtype), shape, radius, kernel, fft_shape)
    return axes, out
