"""Bounds on log p(x) of a latent-variable model with a diagonal-Gaussian q(z | x) and a N(0, I) prior.

Both bounds take the model as two functions, so they serve a conv VAE and a linear-Gaussian check alike:

    encode(x) -> (mean, log_var)          # [B, D] each: q(z | x) = N(mean, diag(exp(log_var)))
    log_likelihood(z, x) -> [B]           # log p(x | z) in nats, z [B, D]

* `elbo`: E_q[log p(x|z)] - KL(q(z|x) || p(z)) with one reparameterised sample z = mean + std * eps
  (Kingma & Welling 2014); the KL is in closed form (`gaussian_kl`) or, with `analytic_kl=False`, the
  single-sample estimate log q(z|x) - log p(z) at the same z.
* `iwae_bound`: log (1/k) sum_i p(x, z_i) / q(z_i | x), z_i ~ q (Burda, Grosse & Salakhutdinov 2016).
  It is a lower bound for every k, equals the sample ELBO at k = 1, increases with k in expectation and
  tends to log p(x) as k -> inf. The k samples are drawn in chunks inside one `lax.scan` that carries a
  running log-sum-exp, so memory is that of one chunk ([chunk, B, D] latents and decoder activations)
  whatever k is (k = 5000 for test NLLs).

Noise: chunk j of the IWAE draws eps = normal(fold_in(key, j), [chunk, B, D]); the ELBO draws
normal(fold_in(key, 0), [1, B, D]), the same numbers as the IWAE's first chunk when chunk = 1.

All values are in nats per example; `bits_per_dim` converts an NLL to bits per dimension.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Elbo", "gaussian_kl", "diag_gaussian_log_prob", "standard_normal_log_prob", "reparameterize",
           "elbo", "iwae_bound", "bits_per_dim"]

Encode = Callable[[jax.Array], "tuple[jax.Array, jax.Array]"]
LogLikelihood = Callable[[jax.Array, jax.Array], jax.Array]

_LOG_2PI = math.log(2 * math.pi)


class Elbo(NamedTuple):
    """The ELBO's parts, each [B] nats: `elbo = recon - kl`.

    Attributes:
      recon: log p(x | z) at one sample z ~ q(z | x) (the reconstruction term; its negative is the loss's
        reconstruction part).
      kl: KL(q(z | x) || N(0, I)) (closed form, or the one-sample estimate).
      elbo: recon - kl, a lower bound on log p(x) in expectation over the sample.
    """

    recon: jax.Array
    kl: jax.Array
    elbo: jax.Array


def gaussian_kl(mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """KL(N(mean, diag(exp(log_var))) || N(0, I)) = 1/2 sum_d (exp(lv) + m^2 - 1 - lv), [B, D] -> [B] nats."""
    return 0.5 * jnp.sum(jnp.exp(log_var) + mean**2 - 1.0 - log_var, axis=-1)


def diag_gaussian_log_prob(z: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """log N(z; mean, diag(exp(log_var))), summed over the last axis (nats)."""
    return -0.5 * jnp.sum((z - mean) ** 2 * jnp.exp(-log_var) + log_var + _LOG_2PI, axis=-1)


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
    """log N(z; 0, I), summed over the last axis (nats)."""
    return -0.5 * jnp.sum(z**2 + _LOG_2PI, axis=-1)


def reparameterize(eps: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """z = mean + exp(log_var / 2) * eps: a sample of q(z | x) differentiable in (mean, log_var)."""
    return mean + jnp.exp(0.5 * log_var) * eps


def elbo(key: jax.Array, x: jax.Array, encode: Encode, log_likelihood: LogLikelihood, *,
         analytic_kl: bool = True) -> Elbo:
    """The one-sample ELBO of each example of `x` (see the module docstring for the noise it draws).

    Args:
      key: PRNG key.
      x: a batch [B, ...] on the likelihood's data scale.
      encode, log_likelihood: the model (module docstring).
      analytic_kl: closed-form KL (lower variance, the training loss); False: log q(z|x) - log p(z) at the
        sampled z, which makes `elbo` equal to `iwae_bound` with k = 1 on the same key.

    Returns:
      An `Elbo` of [B] arrays (nats).
    """
    mean, log_var = encode(x)
    eps = jax.random.normal(jax.random.fold_in(key, 0), (1, *mean.shape), mean.dtype)[0]  # = IWAE chunk 0
    z = reparameterize(eps, mean, log_var)
    recon = log_likelihood(z, x)
    if analytic_kl:
        kl = gaussian_kl(mean, log_var)
    else:
        kl = diag_gaussian_log_prob(z, mean, log_var) - standard_normal_log_prob(z)
    return Elbo(recon=recon, kl=kl, elbo=recon - kl)


def iwae_bound(key: jax.Array, x: jax.Array, encode: Encode, log_likelihood: LogLikelihood,
               num_samples: int, *, chunk_size: int | None = None) -> jax.Array:
    """The importance-weighted bound log (1/k) sum_i w_i, w_i = p(x | z_i) p(z_i) / q(z_i | x), per example.

    Args:
      key: PRNG key.
      x: a batch [B, ...].
      encode, log_likelihood: the model (module docstring); `log_likelihood` is vmapped over the chunk.
      num_samples: k >= 1.
      chunk_size: samples per scan step (default min(k, 100)); memory grows with chunk_size * B, not k. The
        last chunk is padded and its extra samples are masked out, so any k works.

    Returns:
      [B] lower bounds on log p(x) (nats); -bound is the IWAE NLL estimate.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples={num_samples} must be >= 1 (the number of importance samples k)")
    chunk = min(int(num_samples), 100) if chunk_size is None else int(chunk_size)
    if chunk < 1:
        raise ValueError(f"chunk_size={chunk_size} must be >= 1")
    chunk = min(chunk, int(num_samples))
    num_chunks = -(-int(num_samples) // chunk)
    mean, log_var = encode(x)

    def log_weights(j):
        eps = jax.random.normal(jax.random.fold_in(key, j), (chunk, *mean.shape), mean.dtype)
        z = reparameterize(eps, mean, log_var)  # [chunk, B, D]
        log_px = jax.vmap(log_likelihood, in_axes=(0, None))(z, x)
        lw = log_px + standard_normal_log_prob(z) - diag_gaussian_log_prob(z, mean, log_var)
        valid = j * chunk + jnp.arange(chunk) < num_samples
        return jnp.where(valid[:, None], lw, -jnp.inf)

    def step(carry, j):
        running_max, scaled_sum = carry
        lw = log_weights(j)
        new_max = jnp.maximum(running_max, lw.max(axis=0))
        scaled_sum = scaled_sum * jnp.exp(running_max - new_max) + jnp.exp(lw - new_max).sum(axis=0)
        return (new_max, scaled_sum), None

    lw0 = log_weights(0)  # the first chunk starts the accumulator (no -inf - -inf on the first step)
    start = (lw0.max(axis=0), jnp.exp(lw0 - lw0.max(axis=0)).sum(axis=0))
    if num_chunks > 1:
        (running_max, scaled_sum), _ = jax.lax.scan(step, start, jnp.arange(1, num_chunks))
    else:
        running_max, scaled_sum = start
    return running_max + jnp.log(scaled_sum) - math.log(num_samples)


def bits_per_dim(nll_nats, num_dims: int):
    """NLL in nats per example -> bits per dimension: nll / (num_dims ln 2)."""
    return nll_nats / (num_dims * math.log(2))
