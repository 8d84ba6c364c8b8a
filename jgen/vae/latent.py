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

References:
  Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016 (active units).
  Hoffman & Johnson, ELBO surgery, NIPS workshop 2016. He et al., Lagging Inference Networks and Posterior
  Collapse in VAEs, ICLR 2019.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jgen.vae import bounds

__all__ = ["posterior_mean_variance", "active_units", "mutual_information", "pca_plane", "latent_smoothness"]


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
