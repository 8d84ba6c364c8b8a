"""How a VAE uses its latent space: active units, mutual information I(x; z), projections, smoothness.

All functions take the encoder's posterior parameters over a set of examples, `mean` and `log_var`
[N, D] (q(z | x_n) = N(mean_n, diag(exp(log_var_n)))), or a decoding function, and return numbers or
arrays; none of them trains anything.

* `active_units`: dimensions whose posterior mean varies with x, Cov_x(E_q[z_d]) > 0.01 (Burda et al. 2016).
  An inactive dimension has q(z_d | x) = p(z_d) for every x: the decoder cannot use it.
* `mutual_information`: I(x; z) under q(x, z) = p_data(x) q(z | x), estimated on a minibatch as
  E_n E_{z ~ q(z|x_n)}[log q(z | x_n) - log q(z)] with the aggregate posterior q(z) = (1/N) sum_m q(z | x_m)
  (Hoffman & Johnson 2016; the estimator of He et al. 2019). It is at most log N (the minibatch cannot
  tell more than N examples apart) and 0 under posterior collapse.
* `pca_plane`: the top principal directions of the posterior means, for 2-D views of a D-dim latent.
* `latent_smoothness`: mean image distance per unit latent distance between decodings of nearby latents.
* Latent arithmetic: `interpolate` (z = (1 - alpha) z_a + alpha z_b), `class_means` (the mean latent of each
  class) and `style_transfer` (z_a + lambda (z_b - mean of z_b's class): B's deviation from its class, its
  "style", added to A; White 2016, Larsen et al. 2016).

References:
  Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016 (active units).
  Hoffman & Johnson, ELBO surgery, NIPS workshop 2016. He et al., Lagging Inference Networks and Posterior
  Collapse in VAEs, ICLR 2019. White, Sampling Generative Networks, 2016. Larsen et al., Autoencoding
  beyond pixels using a learned similarity metric, ICML 2016 (attribute vectors from class means).
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jgen.vae import bounds

__all__ = ["posterior_mean_variance", "active_units", "mutual_information", "pca_plane", "latent_smoothness",
           "interpolate", "class_means", "style_transfer"]


def posterior_mean_variance(mean) -> np.ndarray:
    """Cov_x(E_q[z_d]) per dimension [D]: the variance over examples of the posterior means (float64)."""
    return np.var(np.asarray(mean, np.float64), axis=0, ddof=1)


def active_units(mean, threshold: float = 0.01) -> int:
    """Number of latent dimensions with Cov_x(E_q[z_d]) > threshold (Burda et al. 2016's criterion)."""
    return int(np.sum(posterior_mean_variance(mean) > threshold))


@jax.jit
def _mi(key: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    z = bounds.reparameterize(jax.random.normal(key, mean.shape), mean, log_var)  # one z_n per example
    log_q_own = bounds.diag_gaussian_log_prob(z, mean, log_var)  # [N]
    # log q(z_n | x_m) for all pairs, [N, N]; the aggregate posterior is their mean over m.
    log_q_all = jax.vmap(lambda zn: bounds.diag_gaussian_log_prob(zn[None], mean, log_var))(z)
    log_q_agg = jax.scipy.special.logsumexp(log_q_all, axis=1) - math.log(mean.shape[0])
    return jnp.mean(log_q_own - log_q_agg)


def mutual_information(key: jax.Array, mean, log_var) -> float:
    """Minibatch estimate of I(x; z) in nats (module docstring); N = len(mean), memory N^2 floats."""
    mean, log_var = jnp.asarray(mean, jnp.float32), jnp.asarray(log_var, jnp.float32)
    if mean.ndim != 2 or mean.shape != log_var.shape or mean.shape[0] < 2:
        raise ValueError(f"mean and log_var must both be [N, D] with N >= 2, got {mean.shape} and {log_var.shape}")
    return float(_mi(key, mean, log_var))


def pca_plane(mean, num_components: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre [D], directions [num_components, D] (orthonormal), std along each [num_components]) of the
    posterior means [N, D], from their principal components; project with `(mean - centre) @ directions.T`."""
    m = np.asarray(mean, np.float64)
    centre = m.mean(0)
    _, s, vt = np.linalg.svd(m - centre, full_matrices=False)
    k = min(num_components, vt.shape[0])
    return centre, vt[:k], s[:k] / math.sqrt(max(len(m) - 1, 1))


def latent_smoothness(decode: Callable[[jax.Array], jax.Array], z: jax.Array, key: jax.Array, radius: float,
                      *, features: Callable[[np.ndarray], np.ndarray] | None = None) -> dict[str, float]:
    """Image distance per unit latent distance between decodings of z and of z + radius * u, u a random unit
    direction: mean over the rows of z of |x(z') - x(z)| / |z' - z| (= / radius).

    Args:
      decode: latents [N, D] -> images [N, H, W, C] (e.g. the decoder's mean image in [0, 1]).
      z: [N, D] starting latents (e.g. posterior means of test images).
      key: PRNG key of the directions.
      radius: latent distance of each pair.
      features: optional images -> features [N, F] (a classifier's penultimate layer); adds the same ratio
        in that space.

    Returns:
      `pixels`: mean Euclidean pixel distance / radius; `pixels_rms`: the same with the per-pixel RMS
      distance (independent of the image size); `features` when `features` is given.
    """
    z = jnp.asarray(z, jnp.float32)
    u = jax.random.normal(key, z.shape)
    u = u / jnp.linalg.norm(u, axis=1, keepdims=True)
    a, b = np.asarray(decode(z), np.float64), np.asarray(decode(z + radius * u), np.float64)
    diff = (a - b).reshape(len(a), -1)
    out = {"pixels": float(np.mean(np.linalg.norm(diff, axis=1)) / radius),
           "pixels_rms": float(np.mean(np.sqrt(np.mean(diff**2, axis=1))) / radius)}
    if features is not None:
        fa, fb = np.asarray(features(a), np.float64), np.asarray(features(b), np.float64)
        out["features"] = float(np.mean(np.linalg.norm(fa - fb, axis=1)) / radius)
    return out


# Latent arithmetic ----------------------------------------------------------------------------------------
def _steps(values, name: str) -> np.ndarray:
    v = np.asarray(values, np.float64)
    if v.ndim != 1 or len(v) == 0 or not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be a non-empty 1-D sequence of finite numbers, got {values!r}")
    return v


def _pairs(z_a, z_b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(z_a, np.float64), np.asarray(z_b, np.float64)
    if a.shape != b.shape or a.ndim not in (1, 2):
        raise ValueError(f"z_a and z_b must both be [D] or [P, D] latents of equal shape, got {a.shape} and {b.shape}")
    return a, b


def interpolate(z_a, z_b, alphas) -> np.ndarray:
    """Linear interpolation z = (1 - alpha) z_a + alpha z_b = z_a + alpha (z_b - z_a) at each alpha.

    Args:
      z_a, z_b: [D] or [P, D] latents (P pairs).
      alphas: [K] interpolation weights (0 gives z_a exactly, 1 gives z_b exactly).

    Returns:
      [K, D] or [P, K, D] (float32): row k is the latent at alphas[k].
    """
    a, b = _pairs(z_a, z_b)
    t = _steps(alphas, "alphas")[:, None]
    return ((1.0 - t) * a[..., None, :] + t * b[..., None, :]).astype(np.float32)  # float64: exact endpoints


def class_means(z, labels, num_classes: int | None = None) -> np.ndarray:
    """The mean latent of each class: [num_classes, D] from latents z [N, D] and integer labels [N].

    Args:
      z: [N, D] latents (e.g. posterior means of labelled images).
      labels: [N] class indices in 0..num_classes-1 (negative labels, e.g. STL-10's unlabelled -1, are skipped).
      num_classes: default max(labels) + 1; every class must have at least one example.
    """
    z, labels = np.asarray(z, np.float64), np.asarray(labels)
    if z.ndim != 2 or labels.shape != (len(z),):
        raise ValueError(f"z must be [N, D] and labels [N], got {z.shape} and {labels.shape}")
    keep = labels >= 0
    z, labels = z[keep], labels[keep].astype(np.int64)
    k = (int(labels.max()) + 1 if len(labels) else 0) if num_classes is None else int(num_classes)
    counts = np.bincount(labels[labels < k], minlength=k)
    if k < 1 or np.any(counts == 0) or np.any(labels >= k):
        raise ValueError(f"labels must lie in 0..num_classes-1 = 0..{k - 1} with at least one example per class; "
                         f"got counts per class {counts.tolist()} and labels up to {labels.max(initial=-1)}")
    sums = np.zeros((k, z.shape[1]))
    np.add.at(sums, labels, z)
    return sums / counts[:, None]


def style_transfer(z_a, z_b, z_b_class_mean, lambdas) -> np.ndarray:
    """z_new = z_a + lambda (z_b - m_b) at each lambda, m_b the mean latent of z_b's class (`class_means`).

    z_b - m_b is what distinguishes B from the average of its class (its style: slant, thickness, pose,
    colour), so the path keeps A's content and adds B's style in proportion to lambda. lambda = 0 is z_a
    exactly.

    Args:
      z_a, z_b: [D] or [P, D] latents; z_b_class_mean: the same shape (each pair's class mean of B).
      lambdas: [K] weights.

    Returns:
      [K, D] or [P, K, D] (float32).
    """
    a, b = _pairs(z_a, z_b)
    m = np.asarray(z_b_class_mean, np.float64)
    if m.shape != b.shape:
        raise ValueError(f"z_b_class_mean must have z_b's shape {b.shape}, got {m.shape}")
    t = _steps(lambdas, "lambdas")[:, None]
    return (a[..., None, :] + t * (b - m)[..., None, :]).astype(np.float32)


def unrelated_pairs_ratio(decode, z: np.ndarray, seed: int) -> tuple[float, float]:
    """Image distance per unit latent distance between unrelated latents: z_i against z_perm(i).

    The global rate a local `latent_smoothness` is read against: a local ratio close to it means images change
    at the decoder's usual rate, without jumps.

    Args:
      decode: `decode(z [n, d]) -> images [n, ...]` (numpy in, numpy out).
      z: [n, d] latents (posterior means, or noises of a deterministic sampler).
      seed: the permutation's seed.

    Returns:
      `(mean of |x_i - x_perm(i)| / |z_i - z_perm(i)| over pairs with distinct latents, mean latent distance)`.
    """
    z = np.asarray(z)
    img = decode(z)
    perm = np.random.default_rng(seed).permutation(len(z))
    dz = np.linalg.norm(z - z[perm], axis=1)
    dx = np.linalg.norm((img - img[perm]).reshape(len(img), -1), axis=1)
    ok = dz > 0
    return float(np.mean(dx[ok] / dz[ok])), float(dz.mean())
