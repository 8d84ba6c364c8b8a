"""The variational bound of a DDPM on 8-bit images, in nats and bits/dim.

Ho, Jain & Abbeel 2020, eq. 5 and Sec. 3.3: for x_0 on the grid {2k / (L - 1) - 1 : k = 0..L-1} in [-1, 1],

    -log p(x_0) <= L_T + sum_{t=2}^T L_{t-1} + L_0
    L_T     = KL(q(x_T | x_0) || N(0, I))                           (the prior term; no parameters)
    L_{t-1} = E_q KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t))  (Gaussian KLs)
    L_0     = -E_q log p_theta(x_0 | x_1)                            (a discretised Gaussian decoder)

p_theta(x_{t-1} | x_t) = N(c1_t x0_hat + c2_t x_t, sigma_t^2 I) with x0_hat from eps_theta and a fixed
sigma_t^2; the decoder integrates N(mu_theta(x_1, 1), sigma_1^2) over each pixel's bin of width 2 / (L - 1),
the outermost bins extended to -inf and +inf, so it is a probability over the L levels and the bound is
in discrete bits/dim, comparable with autoregressive models and dequantised flows.

Each expectation over x_t is one draw per image: eps for step t is
`jax.random.normal(jax.random.fold_in(rng, t), x0.shape)`; every t in 1..T is evaluated (T network calls).
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm

from jgen.diffusion.ddpm import q_sample
from jgen.diffusion.samplers import predict_x0
from jgen.diffusion.schedules import Schedule
from jgen.metrics import likelihood

__all__ = ["VARIANCES", "VLBTerms", "normal_kl", "discretized_gaussian_log_likelihood", "model_log_variance",
           "prior_kl", "vlb_terms", "bits_per_dim"]

EpsFn = Callable[[jax.Array, jax.Array], jax.Array]
VARIANCES = ("posterior", "beta")


class VLBTerms(NamedTuple):
    """The bound's terms per example, nats summed over pixels.

    Attributes:
      prior: L_T, [batch].
      decoder: L_0 = -log p(x_0 | x_1), [batch].
      diffusion: L_{t-1} for t = 2..T, [batch, T - 1] (column t - 2 belongs to step t).
    """

    prior: jax.Array
    decoder: jax.Array
    diffusion: jax.Array

    @property
    def total(self) -> jax.Array:
        """The whole bound -log p(x_0) <= total, nats [batch]."""
        return self.prior + self.decoder + self.diffusion.sum(-1)


def normal_kl(mean1, log_var1, mean2, log_var2):
    """KL(N(mean1, exp(log_var1)) || N(mean2, exp(log_var2))) elementwise, nats (arrays broadcast)."""
    return 0.5 * (log_var2 - log_var1 - 1.0 + jnp.exp(log_var1 - log_var2)
                  + (mean1 - mean2) ** 2 * jnp.exp(-log_var2))


def discretized_gaussian_log_likelihood(x: jax.Array, mean: jax.Array, log_scale: jax.Array,
                                        num_levels: int = 256) -> jax.Array:
    """log P(x) of the level x in [-1, 1] under N(mean, exp(log_scale)^2) integrated over its bin, elementwise.

    The bin of x is [x - 1 / (L - 1), x + 1 / (L - 1)]; the first level's bin extends to -inf and the last's
    to +inf, so the probabilities of the L levels sum to 1 (Ho et al. 2020, eq. 13).
    """
    half = 1.0 / (num_levels - 1)
    inv = jnp.exp(-log_scale)
    lo, hi = inv * (x - mean - half), inv * (x - mean + half)
    # Phi(hi) - Phi(lo) loses every digit in the upper tail; there use Phi(-lo) - Phi(-hi) instead.
    delta = jnp.where(lo > 0, norm.cdf(-lo) - norm.cdf(-hi), norm.cdf(hi) - norm.cdf(lo))
    inner = jnp.log(jnp.maximum(delta, 1e-12))
    return jnp.where(x < -1.0 + half, norm.logcdf(hi), jnp.where(x > 1.0 - half, norm.logcdf(-lo), inner))


def model_log_variance(schedule: Schedule, variance: str = "posterior") -> jax.Array:
    """log sigma_t^2 of p_theta(x_{t-1} | x_t), float32[T].

    "posterior": log beta_tilde_t, t = 1 taking beta_tilde_2 (sigma_1 = 0 would make the decoder a point mass);
    "beta": log beta_t with the same t = 1 entry (Ho et al.'s "fixedlarge").
    """
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")
    if variance == "posterior":
        return schedule.posterior_log_variance_clipped
    return jnp.concatenate([schedule.posterior_log_variance_clipped[:1], jnp.log(schedule.betas[1:])])


def prior_kl(schedule: Schedule, x0: jax.Array) -> jax.Array:
    """L_T = KL(q(x_T | x_0) || N(0, I)), nats summed over all but the batch axis, [batch]."""
    ab = schedule.alpha_bars[-1]
    kl = normal_kl(jnp.sqrt(ab) * x0, jnp.log1p(-ab), 0.0, 0.0)
    return kl.reshape(x0.shape[0], -1).sum(-1)


@functools.partial(jax.jit, static_argnums=(0, 4, 5))
def vlb_terms(eps_fn: EpsFn, schedule: Schedule, x0: jax.Array, rng: jax.Array, variance: str = "posterior",
              num_levels: int = 256) -> VLBTerms:
    """Every term of the bound for images x0 [batch, ...] on the `num_levels` grid in [-1, 1]; see the module.

    Jitted with eps_fn static (calls with the same function object and shapes compile once).
    """
    log_var = model_log_variance(schedule, variance)
    batch = x0.shape[0]

    def term(t):
        eps = jax.random.normal(jax.random.fold_in(rng, t), x0.shape, x0.dtype)
        x_t = q_sample(schedule, x0, t, eps)
        x0_hat = predict_x0(schedule, x_t, t, eps_fn(x_t, jnp.full((batch,), t, jnp.int32)))
        c1, c2 = schedule.posterior_mean_coef1[t - 1], schedule.posterior_mean_coef2[t - 1]
        mean = c1 * x0_hat + c2 * x_t
        true_mean = c1 * x0 + c2 * x_t
        kl = normal_kl(true_mean, schedule.posterior_log_variance_clipped[t - 1], mean, log_var[t - 1])
        nll = -discretized_gaussian_log_likelihood(x0, mean, 0.5 * log_var[t - 1], num_levels)
        # At t = 1 the term is the decoder's; the KL there (a zero-variance posterior) is not part of the bound.
        per_pixel = jnp.where(t == 1, nll, kl)
        return per_pixel.reshape(batch, -1).sum(-1)

    terms = jax.lax.map(term, jnp.arange(1, schedule.num_steps + 1, dtype=jnp.int32))  # [T, batch]
    return VLBTerms(prior=prior_kl(schedule, x0), decoder=terms[0], diffusion=terms[1:].T)


def bits_per_dim(eps_fn: EpsFn, schedule: Schedule, x0: jax.Array, rng: jax.Array, variance: str = "posterior",
                 num_levels: int = 256) -> jax.Array:
    """The bound in bits/dim per example, [batch]: `vlb_terms(...).total / (D log 2)`, D = pixels x channels."""
    terms = vlb_terms(eps_fn, schedule, x0, rng, variance, num_levels)
    return likelihood.nats_to_bits_per_dim(terms.total, int(x0[0].size))
