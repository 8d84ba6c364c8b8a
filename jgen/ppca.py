"""Probabilistic PCA (Tipping & Bishop 1999): closed-form maximum likelihood via the SVD, and EM.

    params = fit(x, latent_dim)                     # PPCAParams(mean [D], W [D, q], sigma2 [])
    z_mean, z_cov = posterior(params, x)            # p(z | x)
    x_rec = reconstruct(params, x)                  # E[x | z = E[z | x]]
    lp = log_prob(params, x)                        # [N] log p(x), nats

Model: z ~ N(0, I_q), x | z ~ N(W z + mean, sigma2 I_D), so x ~ N(mean, C) with C = W W^T + sigma2 I_D.

Maximum likelihood (Tipping & Bishop 1999, eqs. 7-8): with lambda_1 >= ... >= lambda_D the eigenvalues of the
sample covariance S and U_q the leading eigenvectors,

    sigma2 = sum_{j > q} lambda_j / (D - q),     W = U_q (Lambda_q - sigma2 I)^{1/2}   (up to a rotation R).

`fit` reads both from the thin SVD of the centred data matrix X_c = U diag(s) V^T ([N, D], cost O(N D min(N, D)),
lambda_j = s_j^2 / N): the D x D covariance is never formed, so D = 4096 (64 x 64 faces) with N = 400 is cheap,
and sum_{j > q} lambda_j = ||X_c||_F^2 / N - sum_{j <= q} lambda_j counts the zero eigenvalues beyond rank.

All densities use the Woodbury identity with M = W^T W + sigma2 I_q ([q, q]):
C^{-1} = (I - W M^{-1} W^T) / sigma2 and log|C| = (D - q) log sigma2 + log|M|, so nothing is O(D^2).

Posterior (eq. 6 and sec. 3.2): z | x ~ N(M^{-1} W^T (x - mean), sigma2 M^{-1}).

Relation to scikit-learn's `PCA`: its eigenvalues use N - 1 (`ddof=1` here), and its `noise_variance_` averages
the discarded eigenvalues over min(N, D) - q rather than D - q; the two agree when N > D.

References:
  Tipping & Bishop, "Probabilistic principal component analysis", JRSS B 61(3), 1999.
  Bishop, "Pattern Recognition and Machine Learning", 2006, sec. 12.2 (EM: eqs. 12.54-12.57).
  Halko, Martinsson & Tropp, "Finding structure with randomness", SIAM Review 53(2), 2011 (EM's start).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_solve, solve_triangular

__all__ = [
    "PPCAParams",
    "fit",
    "fit_em",
    "em_step",
    "init_em",
    "log_prob",
    "average_log_likelihood",
    "posterior",
    "project",
    "decode",
    "reconstruct",
    "sample",
    "marginal_covariance",
]

Array = jax.Array
_LOG2PI = math.log(2.0 * math.pi)


class PPCAParams(NamedTuple):
    """Parameters of a PPCA model (a pytree).

    Attributes:
      mean: [D] data mean.
      W: [D, q] factor loadings (columns orthogonal for the closed form, ordered by decreasing variance).
      sigma2: [] isotropic noise variance.
    """

    mean: Array
    W: Array
    sigma2: Array


def _check_finite(x: Array, name: str = "x") -> None:
    """Refuses NaN/Inf in concrete data (traced values, inside jit, are not checked)."""
    try:
        a = np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return
    bad = ~np.isfinite(a)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        count = f"{int(bad.sum())} non-finite value" + ("s" if bad.sum() > 1 else "")
        raise ValueError(f"{name} holds {count} (NaN or Inf), the first at index {where}; PPCA needs finite data: "
                         "drop or impute those rows")


def _as_data(x, name: str = "x") -> Array:
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must have shape [N, D] (flatten images first), got {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    _check_finite(x, name)
    return x


def _check_params(params: PPCAParams) -> tuple[int, int]:
    if not isinstance(params, PPCAParams):
        raise TypeError(f"expected jgen.ppca.PPCAParams, got {type(params).__name__}")
    mean, w, s2 = (jnp.shape(a) for a in params)
    if len(w) != 2 or mean != (w[0],) or s2 != ():
        raise ValueError(f"inconsistent PPCAParams: mean {mean}, W {w}, sigma2 {s2}; expected [D], [D, q], []")
    return w


def _check_latent_dim(latent_dim: int, n: int, d: int) -> int:
    q = int(latent_dim)
    if not 1 <= q < d:
        raise ValueError(f"latent_dim must satisfy 1 <= q < D = {d}, got {latent_dim}")
    if q > n:
        raise ValueError(f"latent_dim q = {q} exceeds the number of data points N = {n}; need q <= N")
    return q


def _check_dim(x: Array, d: int, name: str = "x") -> None:
    if x.shape[-1] != d:
        raise ValueError(f"{name} has last dimension {x.shape[-1]}, expected the data dimension D = {d}")
    _check_finite(x, name)


# --------------------------------------------------------------------------- closed form


@functools.partial(jax.jit, static_argnames=("latent_dim", "ddof"))
def _fit(x: Array, latent_dim: int, ddof: int) -> tuple[PPCAParams, Array]:
    n, d = x.shape
    mean = jnp.mean(x, axis=0)
    xc = x - mean
    _, s, vt = jnp.linalg.svd(xc, full_matrices=False)  # s descending, [min(N, D)]
    lam = s**2 / (n - ddof)
    total = jnp.sum(xc**2) / (n - ddof)  # trace of S = sum of all D eigenvalues
    lam_q = lam[:latent_dim]
    sigma2 = (total - jnp.sum(lam_q)) / (d - latent_dim)
    w = vt[:latent_dim].T * jnp.sqrt(jnp.maximum(lam_q - sigma2, 0.0))
    return PPCAParams(mean, w, sigma2), lam


def fit(x, latent_dim: int, *, ddof: int = 0) -> PPCAParams:
    """Closed-form maximum-likelihood PPCA (Tipping & Bishop 1999, eqs. 7-8) from the thin SVD of the data.

    Args:
      x: [N, D] data.
      latent_dim: q, 1 <= q < D and q <= N.
      ddof: covariance normaliser N - ddof; 0 is the maximum-likelihood estimate, 1 reproduces
        scikit-learn's `PCA` (when N > D; see the module docstring).

    Returns:
      PPCAParams(mean [D], W [D, q] with orthogonal columns of norms sqrt(lambda_j - sigma2), sigma2 []).
    """
    x = _as_data(x)
    n, d = x.shape
    q = _check_latent_dim(latent_dim, n, d)
    if ddof not in (0, 1) or n - ddof < 1:
        raise ValueError(f"ddof must be 0 or 1 with N - ddof >= 1, got ddof={ddof}, N={n}")
    return _fit(x, q, int(ddof))[0]


# --------------------------------------------------------------------------- densities and posterior


def _m_cholesky(params: PPCAParams) -> Array:
    w, s2 = params.W, params.sigma2
    return jnp.linalg.cholesky(w.T @ w + s2 * jnp.eye(w.shape[1], dtype=w.dtype))


def log_prob(params: PPCAParams, x) -> Array:
    """log N(x; mean, W W^T + sigma2 I) per row (nats), O(N D q) by the Woodbury identity.

    Args:
      params: PPCAParams.
      x: [N, D] (or [D]).

    Returns:
      [N] (or []) log densities.
    """
    d, q = _check_params(params)
    x = jnp.asarray(x)
    _check_dim(x, d)
    r = x - params.mean
    chol = _m_cholesky(params)
    a = solve_triangular(chol, (r @ params.W)[..., None], lower=True)[..., 0]  # |a|^2 = r^T W M^-1 W^T r
    maha = (jnp.sum(r**2, -1) - jnp.sum(a**2, -1)) / params.sigma2
    log_det = (d - q) * jnp.log(params.sigma2) + 2.0 * jnp.sum(jnp.log(jnp.diag(chol)))
    return -0.5 * (d * _LOG2PI + log_det + maha)


def average_log_likelihood(params: PPCAParams, x) -> Array:
    """Mean of `log_prob` over rows of x [N, D]: (1/N) sum_n log p(x_n), nats (scikit-learn's `score`)."""
    return jnp.mean(log_prob(params, x))


def posterior(params: PPCAParams, x) -> tuple[Array, Array]:
    """p(z | x) = N(M^{-1} W^T (x - mean), sigma2 M^{-1}), M = W^T W + sigma2 I (Tipping & Bishop, eq. 6).

    Args:
      x: [..., D].

    Returns:
      (mean [..., q], covariance [q, q]; the same for every x).
    """
    d, q = _check_params(params)
    x = jnp.asarray(x)
    _check_dim(x, d)
    chol = _m_cholesky(params)
    wr = (x - params.mean) @ params.W  # [..., q]
    z = cho_solve((chol, True), wr.reshape(-1, q).T).T.reshape(wr.shape)
    cov = params.sigma2 * cho_solve((chol, True), jnp.eye(q, dtype=chol.dtype))
    return z, cov


def project(params: PPCAParams, x) -> Array:
    """Posterior-mean latent projection E[z | x], [..., D] -> [..., q]."""
    return posterior(params, x)[0]


def decode(params: PPCAParams, z) -> Array:
    """E[x | z] = W z + mean, [..., q] -> [..., D]."""
    _, q = _check_params(params)
    z = jnp.asarray(z)
    if z.shape[-1] != q:
        raise ValueError(f"z has last dimension {z.shape[-1]}, expected the latent dimension q = {q}")
    return z @ params.W.T + params.mean


def reconstruct(params: PPCAParams, x, *, mode: str = "posterior") -> Array:
    """Reconstructs x [..., D] through the latent space.

    Args:
      mode: "posterior": E[x | z = E[z | x]] = W M^{-1} W^T (x - mean) + mean, shrunk towards the mean by
        sigma2; "projection": W (W^T W)^{-1} W^T (x - mean) + mean, the orthogonal projection onto the principal
        subspace, which minimises the squared error (Tipping & Bishop, sec. 3.4).

    Returns:
      [..., D].
    """
    if mode == "posterior":
        return decode(params, project(params, x))
    if mode == "projection":
        d, _ = _check_params(params)
        x = jnp.asarray(x)
        _check_dim(x, d)
        coef = jnp.linalg.lstsq(params.W, (x - params.mean).reshape(-1, d).T)[0].T
        return (coef @ params.W.T).reshape(x.shape) + params.mean
    raise ValueError(f"mode must be 'posterior' or 'projection', got {mode!r}")


def sample(params: PPCAParams, key: Array, num_samples: int, *, noise: bool = True) -> Array:
    """Draws num_samples points: x = W z + mean (+ sqrt(sigma2) eps when `noise`), z, eps standard normal.

    With noise=False the draws are E[x | z] for z ~ p(z) (noise-free "mean faces").

    Returns:
      [num_samples, D].
    """
    d, q = _check_params(params)
    kz, ke = jax.random.split(key)
    z = jax.random.normal(kz, (num_samples, q), params.W.dtype)
    x = decode(params, z)
    if noise:
        x = x + jnp.sqrt(params.sigma2) * jax.random.normal(ke, (num_samples, d), params.W.dtype)
    return x


def marginal_covariance(params: PPCAParams) -> Array:
    """C = W W^T + sigma2 I, [D, D] (only for small D; everything else avoids it)."""
    d, _ = _check_params(params)
    return params.W @ params.W.T + params.sigma2 * jnp.eye(d, dtype=params.W.dtype)


# --------------------------------------------------------------------------- EM


def init_em(x, latent_dim: int, key: Array, *, power_iterations: int = 2, oversampling: int = 10) -> PPCAParams:
    """EM starting point at the data's scale, from a randomised range finder with a few power iterations.

    With r = q + `oversampling` Gaussian test vectors G [D, r], the range of (X_c X_c^T)^k X_c G (k =
    `power_iterations`, re-orthonormalised after every product) approximates the leading principal subspace
    (Halko, Martinsson & Tropp 2011, Alg. 4.4); the Rayleigh-Ritz values lambda_hat_j <= lambda_j within it give
    sigma2 = (tr S - sum_{j <= q} lambda_hat_j) / (D - q) and W = V_q (lambda_hat_q - sigma2)_+^{1/2}, as in
    the closed form. Cost: 2k + 2 products with X_c [N, D] x [D, r], no D x D matrix.

    Why not a random W: EM shrinks a W that is too large only by lambda / (lambda + sigma2) per step (it grows one
    that is too small by ~lambda / sigma2), and on faces lambda_1 / sigma2 can be in the hundreds, so a start with
    columns at the scale of the total variance is still far off after hundreds of steps. The Ritz values are
    lower bounds, so this start approaches from below; oversampling makes the subspace error shrink like
    (lambda_{r+1} / lambda_q)^(2k+1) rather than EM's (lambda_{q+1} / lambda_q) per step.

    Args:
      x: [N, D] data.
      latent_dim: q.
      key: PRNG key for G.
      power_iterations: k >= 0.
      oversampling: extra test vectors (r = min(q + oversampling, N, D)).

    Returns:
      PPCAParams(data mean, W [D, q], sigma2).
    """
    x = _as_data(x)
    n, d = x.shape
    q = _check_latent_dim(latent_dim, n, d)
    if int(power_iterations) < 0 or int(oversampling) < 0:
        raise ValueError(f"power_iterations and oversampling must be >= 0, got {power_iterations}, {oversampling}")
    return _init_em(x, key, q, int(power_iterations), min(q + int(oversampling), n, d))


def _orthonormal_basis(y: Array) -> tuple[Array, Array, Array]:
    """Orthonormal basis of span(y) for y [K, r] of full column rank, from the eigenvectors of the [r, r] Gram
    matrix (`jnp.linalg.qr` and `svd` run far slower on XLA's CPU backend). Returns (basis [K, r], eigenvalues
    of y^T y descending [r], their eigenvectors [r, r])."""
    e, v = jnp.linalg.eigh(y.T @ y)
    e, v = e[::-1], v[:, ::-1]
    # Directions y does not span (e.g. r = N test vectors against centred data of rank N - 1) stay small.
    e = jnp.maximum(e, e[0] * jnp.finfo(y.dtype).eps + jnp.finfo(y.dtype).tiny)
    return (y @ v) / jnp.sqrt(e), e, v


@functools.partial(jax.jit, static_argnames=("latent_dim", "power_iterations", "rank"))
def _init_em(x: Array, key: Array, latent_dim: int, power_iterations: int, rank: int) -> PPCAParams:
    n, d = x.shape
    mean = jnp.mean(x, axis=0)
    xc = x - mean
    y = _orthonormal_basis(xc @ jax.random.normal(key, (d, rank), x.dtype))[0]  # [N, r]
    for _ in range(power_iterations):
        y = _orthonormal_basis(xc @ _orthonormal_basis(xc.T @ y)[0])[0]
    # Rayleigh-Ritz in span(X_c^T y): the right singular vectors of B = y^T X_c [r, D] are X_c^T y's basis.
    vt, s2_b, _ = _orthonormal_basis(xc.T @ y)  # s2_b: squared singular values of B
    lam = s2_b[:latent_dim] / n
    sigma2 = (jnp.sum(xc**2) / n - jnp.sum(lam)) / (d - latent_dim)
    # A zero column would stay zero under EM: keep every column at least a little above zero.
    w = vt[:, :latent_dim] * jnp.sqrt(jnp.maximum(lam - sigma2, 1e-2 * sigma2))
    return PPCAParams(mean, w, sigma2)


def em_step(params: PPCAParams, xc: Array) -> tuple[PPCAParams, Array]:
    """One EM iteration on centred data xc [N, D] (Bishop 2006, eqs. 12.54-12.57); O(N D q).

    E-step: E[z_n] = M^{-1} W^T x_n, sum_n E[z_n z_n^T] = N sigma2 M^{-1} + E[Z]^T E[Z].
    M-step: W' = X^T E[Z] (sum E[z z^T])^{-1};
            sigma2' = (||X||_F^2 - 2 tr(E[Z]^T X W') + tr(sum E[z z^T] W'^T W')) / (N D).

    Returns:
      (new params, average log-likelihood of the *input* params).
    """
    n, d = xc.shape
    w, s2 = params.W, params.sigma2
    # [q, q] systems through eigh: XLA's CPU triangular solves (cholesky solves, LU) are far slower.
    e, v = jnp.linalg.eigh(w.T @ w + s2 * jnp.eye(w.shape[1], dtype=w.dtype))  # M = V diag(e) V^T
    xw = xc @ w  # [N, q]
    xwv = xw @ v
    ez = (xwv / e) @ v.T  # [N, q] = X W M^{-1}
    szz = n * s2 * (v / e) @ v.T + ez.T @ ez  # [q, q]
    xez = xc.T @ ez  # [D, q]
    e_zz, v_zz = jnp.linalg.eigh(szz)
    w_new = ((xez @ v_zz) / e_zz) @ v_zz.T
    x_sq = jnp.sum(xc**2)
    s2_new = (x_sq - 2.0 * jnp.sum(xez * w_new) + jnp.sum(szz * (w_new.T @ w_new))) / (n * d)
    # Log-likelihood of the current params from quantities already computed (Woodbury, as in `log_prob`).
    log_det = (d - w.shape[1]) * jnp.log(s2) + jnp.sum(jnp.log(e))
    ll = -0.5 * (d * _LOG2PI + log_det + (x_sq - jnp.sum(xwv**2 / e)) / (n * s2))
    return PPCAParams(params.mean, w_new, s2_new), ll


@functools.partial(jax.jit, static_argnames=("num_steps",))
def _fit_em(init: PPCAParams, x: Array, num_steps: int) -> tuple[PPCAParams, Array]:
    xc = x - init.mean

    def body(p, _):
        return em_step(p, xc)

    return jax.lax.scan(body, init, None, length=num_steps)


def fit_em(x, latent_dim: int, key: Array, *, num_steps: int = 200, init: PPCAParams | None = None
           ) -> tuple[PPCAParams, Array]:
    """Maximum-likelihood PPCA by EM (Tipping & Bishop 1999, sec. 3.2), a `lax.scan` of `em_step`.

    Converges to the closed form `fit(x, q)` up to a rotation of W (W W^T, sigma2 and the log-likelihood
    match); each step costs O(N D q) and never forms S. The default start `init_em` (a few power iterations)
    is what makes a few hundred steps enough on faces, where sigma2 is tiny against the leading eigenvalues.

    Args:
      x: [N, D] data.
      latent_dim: q.
      key: PRNG key of the default start `init_em(x, q, key)` (ignored when `init` is given).
      num_steps: EM iterations.
      init: optional starting PPCAParams (its mean is replaced by the data mean, the ML mean).

    Returns:
      (params, log_likelihoods [num_steps]): the average log-likelihood before each step (non-decreasing).
    """
    x = _as_data(x)
    n, d = x.shape
    q = _check_latent_dim(latent_dim, n, d)
    if init is None:
        init = init_em(x, q, key)
    elif _check_params(init) != (d, q):
        raise ValueError(f"init has W of shape {init.W.shape}, expected [D, q] = [{d}, {q}]")
    if int(num_steps) < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    init = PPCAParams(jnp.mean(x, axis=0), jnp.asarray(init.W, x.dtype), jnp.asarray(init.sigma2, x.dtype))
    return _fit_em(init, x, int(num_steps))
