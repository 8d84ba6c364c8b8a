"""DDPM: the forward noising process, the noise-prediction loss and the ancestral sampler.

Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020.

Time steps are t = 1..T. Arrays of per-step quantities are indexed by t - 1; `alpha_bar(0) = 1`.

    q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I),  alpha_bar_t = prod_{s<=t} (1 - beta_s)
    loss = E_{t, x_0, eps} || eps - eps_theta(x_t, t) ||^2
    x_{t-1} = (x_t - (1 - alpha_t) / sqrt(1 - alpha_bar_t) eps_theta(x_t, t)) / sqrt(alpha_t) + sigma_t z
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

# The schedules moved to their own module; re-exported so that `ddpm.make_schedule` etc. keep working.
from jgen.diffusion.schedules import (SCHEDULES, Schedule, alpha_bar_curve, cosine_beta_schedule,  # noqa: F401
                                      linear_beta_schedule, make_schedule)

__all__ = ["Schedule", "linear_beta_schedule", "cosine_beta_schedule", "make_schedule", "SCHEDULES",
           "alpha_bar_curve", "q_sample", "noise_prediction_loss", "ancestral_sample"]

# eps_fn(x_t [batch, ...], t [batch] int32 in 1..T) -> predicted noise [batch, ...]
EpsFn = Callable[[jax.Array, jax.Array], jax.Array]


def _per_example(values: jax.Array, t: jax.Array, like: jax.Array) -> jax.Array:
    v = values[t - 1]
    return v.reshape(v.shape + (1,) * (like.ndim - v.ndim))


def q_sample(schedule: Schedule, x0: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.

    Args:
      x0: clean data [batch, ...]. t: int steps in 1..T, [batch] or scalar. eps: noise, shaped like x0.
    """
    t = jnp.broadcast_to(jnp.asarray(t, jnp.int32), x0.shape[:1])
    ab = _per_example(schedule.alpha_bars, t, x0)
    return jnp.sqrt(ab) * x0 + jnp.sqrt(1.0 - ab) * eps


def noise_prediction_loss(eps_fn: EpsFn, schedule: Schedule, x0: jax.Array, key: jax.Array) -> jax.Array:
    """Monte Carlo estimate of E_{t ~ U{1..T}, eps ~ N(0, I)} ||eps - eps_fn(x_t, t)||^2 / dim (a scalar)."""
    k_t, k_eps = jax.random.split(key)
    t = jax.random.randint(k_t, x0.shape[:1], 1, schedule.num_steps + 1)
    eps = jax.random.normal(k_eps, x0.shape, x0.dtype)
    return jnp.mean((eps - eps_fn(q_sample(schedule, x0, t, eps), t)) ** 2)


def ancestral_sample(eps_fn: EpsFn, schedule: Schedule, key: jax.Array, shape: tuple[int, ...],
                     return_trajectory: bool = False):
    """Draws x_0 by the DDPM ancestral sampler, as one `lax.scan` from t = T down to 1.

    sigma_t = sqrt(beta_t) (= sqrt(1 - alpha_t)); no noise is added at the last step (t = 1), as in Ho et al.

    Args:
      eps_fn: the trained noise predictor.
      shape: sample shape [num_samples, ...].
      return_trajectory: also return x_t for t = T..0, stacked as [T + 1, num_samples, ...].
    """
    k_init, k_steps = jax.random.split(key)
    x_T = jax.random.normal(k_init, shape)
    ts = jnp.arange(schedule.num_steps, 0, -1, dtype=jnp.int32)

    def step(x_t, inputs):
        t, key = inputs
        tb = jnp.full(shape[:1], t)
        a, ab, b = schedule.alphas[t - 1], schedule.alpha_bars[t - 1], schedule.betas[t - 1]
        mu = (x_t - (1.0 - a) / jnp.sqrt(1.0 - ab) * eps_fn(x_t, tb)) / jnp.sqrt(a)
        z = jnp.where(t > 1, jax.random.normal(key, shape), 0.0)
        x_prev = mu + jnp.sqrt(b) * z
        return x_prev, x_prev

    x0, traj = jax.lax.scan(step, x_T, (ts, jax.random.split(k_steps, schedule.num_steps)))
    if return_trajectory:
        return x0, jnp.concatenate([x_T[None], traj])
    return x0
