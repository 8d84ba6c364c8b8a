"""DDPM: the forward noising process, the noise-prediction loss and the ancestral sampler.

Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020.

Time steps are t = 1..T. Arrays of per-step quantities are indexed by t - 1; `alpha_bar(0) = 1`.

    q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I),  alpha_bar_t = prod_{s<=t} (1 - beta_s)
    loss = E_{t, x_0, eps} || eps - eps_theta(x_t, t) ||^2
    x_{t-1} = (x_t - (1 - alpha_t) / sqrt(1 - alpha_bar_t) eps_theta(x_t, t)) / sqrt(alpha_t) + sigma_t z
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Schedule", "linear_beta_schedule", "cosine_beta_schedule", "make_schedule", "SCHEDULES",
           "alpha_bar_curve", "q_sample", "noise_prediction_loss", "ancestral_sample"]

SCHEDULES = ("linear", "cosine")

# eps_fn(x_t [batch, ...], t [batch] int32 in 1..T) -> predicted noise [batch, ...]
EpsFn = Callable[[jax.Array, jax.Array], jax.Array]


class Schedule(NamedTuple):
    """A noise schedule; every field is float32[T], entry t - 1 belongs to step t.

    Attributes:
      betas: beta_t, the variance added at step t.
      alphas: alpha_t = 1 - beta_t.
      alpha_bars: alpha_bar_t = prod_{s <= t} alpha_s.
    """

    betas: jax.Array
    alphas: jax.Array
    alpha_bars: jax.Array

    @property
    def num_steps(self) -> int:
        return self.betas.shape[0]


def linear_beta_schedule(num_steps: int = 50, beta_start: float = 1e-4, beta_end: float = 2e-2) -> Schedule:
    """beta_t linear from `beta_start` (t = 1) to `beta_end` (t = T)."""
    if num_steps < 1 or not 0.0 < beta_start <= beta_end < 1.0:
        raise ValueError(f"need num_steps >= 1 and 0 < beta_start <= beta_end < 1, got "
                         f"{num_steps}, {beta_start}, {beta_end}")
    betas = jnp.linspace(beta_start, beta_end, num_steps, dtype=jnp.float32)
    alphas = 1.0 - betas
    return Schedule(betas, alphas, jnp.cumprod(alphas))


def cosine_beta_schedule(num_steps: int = 50, offset: float = 0.008, max_beta: float = 0.999) -> Schedule:
    """The cosine schedule: alpha_bar_t = f(t) / f(0), f(t) = cos((t / T + s) / (1 + s) * pi / 2)^2.

    alpha_bar_T is 0 before clipping, so x_T is pure noise whatever T; beta_t = 1 - alpha_bar_t /
    alpha_bar_{t-1} is clipped to `max_beta` to keep the last steps finite. Nichol & Dhariwal, "Improved
    Denoising Diffusion Probabilistic Models", ICML 2021, eq. 17.

    Args:
      num_steps: T. offset: s, which keeps beta_1 from being tiny. max_beta: the clip of beta_t, in (0, 1).
    """
    if num_steps < 1 or offset < 0 or not 0.0 < max_beta < 1.0:
        raise ValueError(f"need num_steps >= 1, offset >= 0 and 0 < max_beta < 1, got {num_steps}, {offset}, "
                         f"{max_beta}")
    t = jnp.arange(num_steps + 1, dtype=jnp.float32) / num_steps
    f = jnp.cos((t + offset) / (1.0 + offset) * jnp.pi / 2) ** 2
    betas = jnp.clip(1.0 - f[1:] / f[:-1], 0.0, max_beta)
    alphas = 1.0 - betas
    return Schedule(betas, alphas, jnp.cumprod(alphas))


def make_schedule(name: str, num_steps: int, beta_start: float = 1e-4, beta_end: float = 2e-2) -> Schedule:
    """The schedule `name` (one of `SCHEDULES`); the beta range applies to the linear one only."""
    if name == "linear":
        return linear_beta_schedule(num_steps, beta_start, beta_end)
    if name == "cosine":
        return cosine_beta_schedule(num_steps)
    raise ValueError(f"unknown noise schedule {name!r}; expected one of {', '.join(SCHEDULES)}")


def alpha_bar_curve(schedule: Schedule) -> jax.Array:
    """alpha_bar_t for t = 0..T (float32[T + 1]), with alpha_bar_0 = 1."""
    return jnp.concatenate([jnp.ones((1,), schedule.alpha_bars.dtype), schedule.alpha_bars])


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


def noise_prediction_loss(eps_fn: EpsFn, schedule: Schedule, x0: jax.Array, rng: jax.Array) -> jax.Array:
    """Monte Carlo estimate of E_{t ~ U{1..T}, eps ~ N(0, I)} ||eps - eps_fn(x_t, t)||^2 / dim (a scalar)."""
    k_t, k_eps = jax.random.split(rng)
    t = jax.random.randint(k_t, x0.shape[:1], 1, schedule.num_steps + 1)
    eps = jax.random.normal(k_eps, x0.shape, x0.dtype)
    return jnp.mean((eps - eps_fn(q_sample(schedule, x0, t, eps), t)) ** 2)


def ancestral_sample(eps_fn: EpsFn, schedule: Schedule, rng: jax.Array, shape: tuple[int, ...],
                     return_trajectory: bool = False):
    """Draws x_0 by the DDPM ancestral sampler, as one `lax.scan` from t = T down to 1.

    sigma_t = sqrt(beta_t) (= sqrt(1 - alpha_t)); no noise is added at the last step (t = 1), as in Ho et al.

    Args:
      eps_fn: the trained noise predictor.
      shape: sample shape [num_samples, ...].
      return_trajectory: also return x_t for t = T..0, stacked as [T + 1, num_samples, ...].
    """
    k_init, k_steps = jax.random.split(rng)
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
