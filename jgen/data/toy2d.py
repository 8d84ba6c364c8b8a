"""2-D toy distributions: samplers and log-densities as pure JAX functions.

    x = sample(name, key, num_samples, **kw)  # f32[num_samples, 2]
    lp = log_prob(name, x, **kw)              # f32[num_samples], natural log of the density (nats)

| name            | distribution                                                      | log_prob         |
|-----------------|-------------------------------------------------------------------|------------------|
| "mixture4"      | equal mixture of N(m, sigma^2 I), m in {(0,0),(0,2),(2,0),(2,2)}   | exact            |
| "spiral"        | theta ~ U[0, 4 pi], r ~ N(theta/2, variance), x = r (cos, sin)    | exact (see below)|
| "moons"         | two interleaved half circles (sklearn `make_moons`) + N(0, noise^2) | quadrature       |
| "circles"       | two concentric circles (sklearn `make_circles`) + N(0, noise^2)   | exact (Bessel)   |
| "gaussian_grid" | equal mixture on a k x k grid                                     | exact            |
| "gaussians_rot" | `num_gaussians` equal components equally spaced on a circle      | exact            |
| "dino"          | standardised Datasaurus dino + Gaussian jitter (resampling)       | exact (KDE)      |

Spiral: with the polar map (theta, r) -> x = r (cos theta, sin theta), |det d x / d(r, theta)| = |r|, so
p(x) = sum over the pre-images (theta_k, r_k) of x of p(theta_k) p(r_k | theta_k) / |x|. The integral over
theta collapses to that finite sum (4 pre-images: theta = atan2(x) + 2 pi j with r = |x|, and
theta = atan2(x) + pi + 2 pi j with r = -|x|, j = 0, 1, inside [0, 4 pi)), so no quadrature is needed.
The exercise's "N(theta/2, 0.25)" is read as variance 0.25 (std 0.5): the `variance` argument.

Moons: the density of a uniform point on a curve convolved with a Gaussian is an integral over the curve
parameter; it is computed with `num_quad` Gauss-Legendre nodes per half circle (error < 1e-6 relative for
noise >= 0.05 with the default 256 nodes).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

__all__ = ["NAMES", "sample", "log_prob", "mixture_params", "dino_points"]

_LOG2PI = math.log(2.0 * math.pi)


# --- isotropic Gaussian mixtures ------------------------------------------------------------------------
def _mixture_sample(key, n, means, sigma):
    k1, k2 = jax.random.split(key)
    comp = jax.random.randint(k1, (n,), 0, means.shape[0])
    return means[comp] + sigma * jax.random.normal(k2, (n, 2), means.dtype)


def _mixture_log_prob(x, means, sigma):
    d2 = jnp.sum((x[:, None, :] - means[None, :, :]) ** 2, axis=-1)
    comp = -0.5 * d2 / sigma**2 - _LOG2PI - 2.0 * jnp.log(sigma)
    return logsumexp(comp, axis=1) - jnp.log(means.shape[0])


def mixture_params(name: str, **kw: Any) -> tuple[jax.Array, float]:
    """`(means f32[K, 2], sigma)` of the equal-weight isotropic mixtures ("mixture4", "gaussian_grid",
    "gaussians_rot", "dino")."""
    if name == "mixture4":
        sigma = kw.pop("sigma", 0.5)
        means = jnp.array([[0.0, 0.0], [0.0, 2.0], [2.0, 0.0], [2.0, 2.0]])
    elif name == "gaussian_grid":
        k, spacing, sigma = kw.pop("grid_size", 5), kw.pop("spacing", 1.0), kw.pop("sigma", 0.1)
        c = (jnp.arange(k) - (k - 1) / 2.0) * spacing
        means = jnp.stack(jnp.meshgrid(c, c, indexing="ij"), -1).reshape(-1, 2)
    elif name == "gaussians_rot":
        k, radius, sigma = kw.pop("num_gaussians", 5), kw.pop("radius", 2.0), kw.pop("sigma", 0.2)
        angle = kw.pop("angle", 0.0)
        t = angle + 2.0 * jnp.pi * jnp.arange(k) / k
        means = radius * jnp.stack([jnp.cos(t), jnp.sin(t)], -1)
    elif name == "dino":
        sigma = kw.pop("sigma", 0.05)
        pts = kw.pop("points", None)
        means = jnp.asarray(dino_points() if pts is None else pts, jnp.float32)
    else:
        raise ValueError(f"{name!r} is not a Gaussian mixture toy")
    _no_extra(name, kw)
    if not float(sigma) > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    return means.astype(jnp.float32), float(sigma)


@functools.lru_cache(maxsize=1)
def _dino_points_cached() -> np.ndarray:
    from jgen.data.loading import load

    xy = load("datasaurus", dataset="dino")["xy"].astype(np.float64)
    return ((xy - xy.mean(0)) / xy.std(0)).astype(np.float32)


def dino_points() -> np.ndarray:
    """The 142 Datasaurus dino points standardised per coordinate (zero mean, unit std), f32[142, 2].

    Loaded once with `jgen.data.load("datasaurus", dataset="dino")` (needs the raw file or a download).
    """
    return _dino_points_cached().copy()


# --- spiral ---------------------------------------------------------------------------------------------
def _spiral_sample(key, n, variance=0.25):
    k1, k2 = jax.random.split(key)
    theta = jax.random.uniform(k1, (n,), minval=0.0, maxval=4.0 * jnp.pi)
    r = theta / 2.0 + jnp.sqrt(variance) * jax.random.normal(k2, (n,))
    return r[:, None] * jnp.stack([jnp.cos(theta), jnp.sin(theta)], -1)


def _spiral_log_prob(x, variance=0.25):
    rho = jnp.linalg.norm(x, axis=-1)
    phi = jnp.mod(jnp.arctan2(x[:, 1], x[:, 0]), 2.0 * jnp.pi)  # in [0, 2 pi)
    # Pre-images in [0, 4 pi): theta = phi + 2 pi j with r = rho; theta = phi + pi + 2 pi j (mod 4 pi
    # window) with r = -rho. phi + pi may exceed 2 pi: shifting by -2 pi keeps both copies inside [0, 4 pi).
    psi = jnp.mod(phi + jnp.pi, 2.0 * jnp.pi)
    thetas = jnp.stack([phi, phi + 2 * jnp.pi, psi, psi + 2 * jnp.pi], -1)
    rs = jnp.stack([rho, rho, -rho, -rho], -1)
    log_n = -0.5 * (rs - thetas / 2.0) ** 2 / variance - 0.5 * jnp.log(2.0 * jnp.pi * variance)
    return logsumexp(log_n, axis=-1) - jnp.log(4.0 * jnp.pi) - jnp.log(rho)


# --- moons / circles ------------------------------------------------------------------------------------
def _moon_curves(t):
    upper = jnp.stack([jnp.cos(t), jnp.sin(t)], -1)
    lower = jnp.stack([1.0 - jnp.cos(t), 0.5 - jnp.sin(t)], -1)
    return upper, lower


def _moons_sample(key, n, noise=0.1):
    k1, k2, k3 = jax.random.split(key, 3)
    t = jax.random.uniform(k1, (n,), minval=0.0, maxval=jnp.pi)
    which = jax.random.bernoulli(k2, 0.5, (n,))
    upper, lower = _moon_curves(t)
    return jnp.where(which[:, None], lower, upper) + noise * jax.random.normal(k3, (n, 2))


@functools.lru_cache(maxsize=8)
def _gauss_legendre(num: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(num)


def _moons_log_prob(x, noise=0.1, num_quad=256):
    nodes, weights = _gauss_legendre(int(num_quad))
    t = jnp.asarray((nodes + 1.0) * np.pi / 2.0, x.dtype)  # nodes on [0, pi]
    logw = jnp.asarray(np.log(weights / 2.0), x.dtype)  # weights of the mean over t ~ U[0, pi]
    upper, lower = _moon_curves(t)
    centres = jnp.concatenate([upper, lower], 0)  # [2Q, 2]
    d2 = jnp.sum((x[:, None, :] - centres[None]) ** 2, -1)
    comp = -0.5 * d2 / noise**2 - _LOG2PI - 2.0 * jnp.log(noise) + jnp.concatenate([logw, logw])
    return logsumexp(comp, axis=1) - jnp.log(2.0)


def _circles_sample(key, n, noise=0.05, factor=0.5):
    k1, k2, k3 = jax.random.split(key, 3)
    t = jax.random.uniform(k1, (n,), minval=0.0, maxval=2.0 * jnp.pi)
    radius = jnp.where(jax.random.bernoulli(k2, 0.5, (n,)), factor, 1.0)
    return radius[:, None] * jnp.stack([jnp.cos(t), jnp.sin(t)], -1) + noise * jax.random.normal(k3, (n, 2))


def _circles_log_prob(x, noise=0.05, factor=0.5):
    # A uniform point on a circle of radius R plus N(0, s^2 I) has density
    # exp(-(|x|^2 + R^2) / 2 s^2) I0(R |x| / s^2) / (2 pi s^2); i0e(z) = exp(-z) I0(z) keeps it finite.
    rho2 = jnp.sum(x**2, -1)
    rho = jnp.sqrt(rho2)

    def ring(radius):
        z = radius * rho / noise**2
        return (-(rho2 + radius**2) / (2 * noise**2) + jnp.log(jax.scipy.special.i0e(z)) + z
                - _LOG2PI - 2.0 * jnp.log(noise))

    return jnp.logaddexp(ring(1.0), ring(factor)) - jnp.log(2.0)


# --- dispatch -------------------------------------------------------------------------------------------
def _no_extra(name, kw):
    if kw:
        raise TypeError(f"toy {name!r} got unexpected options {sorted(kw)}")


def _mixture(name):
    def s(key, n, **kw):
        means, sigma = mixture_params(name, **kw)
        return _mixture_sample(key, n, means, sigma)

    def lp(x, **kw):
        means, sigma = mixture_params(name, **kw)
        return _mixture_log_prob(x, means, sigma)

    return s, lp


_TOYS: dict[str, tuple[Callable, Callable]] = {
    "mixture4": _mixture("mixture4"),
    "spiral": (_spiral_sample, _spiral_log_prob),
    "moons": (_moons_sample, _moons_log_prob),
    "circles": (_circles_sample, _circles_log_prob),
    "gaussian_grid": _mixture("gaussian_grid"),
    "gaussians_rot": _mixture("gaussians_rot"),
    "dino": _mixture("dino"),
}
NAMES = tuple(_TOYS)


def _get(name: str):
    try:
        return _TOYS[name]
    except KeyError:
        raise ValueError(f"unknown toy {name!r}; choose one of {list(NAMES)}") from None


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def _sample_jit(name, key, n, kw_items):
    return _get(name)[0](key, n, **dict(kw_items))


@functools.partial(jax.jit, static_argnums=(0, 2))
def _log_prob_jit(name, x, kw_items):
    return _get(name)[1](x, **dict(kw_items))


def _static_kw(kw: dict) -> tuple | None:
    """Options as a hashable tuple (compiled once per value), or None if some option is an array."""
    items = tuple(sorted(kw.items()))
    try:
        hash(items)
    except TypeError:
        return None
    return items


def sample(name: str, key: jax.Array, num_samples: int, **kw: Any) -> jax.Array:
    """Draws `num_samples` points f32[num_samples, 2] from toy `name`.

    Options (`kw`): mixture4 `sigma=0.5` (or 1.0); spiral `variance=0.25`; moons `noise=0.1`; circles
    `noise=0.05, factor=0.5`; gaussian_grid `grid_size=5, spacing=1.0, sigma=0.1`; gaussians_rot
    `num_gaussians=5, radius=2.0, sigma=0.2, angle=0.0`; dino `sigma=0.05` (jitter, standardised units),
    `points=None` (default: `dino_points()`). Compiled once per (name, num_samples, options); jittable with
    `name`, `num_samples` and the options static.
    """
    if int(num_samples) < 0:
        raise ValueError(f"num_samples must be non-negative, got {num_samples}")
    _get(name)
    items = _static_kw(kw)
    try:
        if items is None:
            return _get(name)[0](key, int(num_samples), **kw)
        return _sample_jit(name, key, int(num_samples), items)
    except TypeError as e:
        raise TypeError(f"toy {name!r}: {e}") from None


def log_prob(name: str, x, **kw: Any) -> jax.Array:
    """Log-density (nats) of toy `name` at points `x` f32[n, 2]; returns f32[n]. Options as in `sample`,
    plus moons `num_quad=256` (quadrature nodes per half circle)."""
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[-1] != 2:
        raise ValueError(f"x must have shape [n, 2], got {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    _get(name)
    items = _static_kw(kw)
    try:
        if items is None:
            return _get(name)[1](x, **kw)
        return _log_prob_jit(name, x, items)
    except TypeError as e:
        raise TypeError(f"toy {name!r}: {e}") from None
