"""Noise schedules of a diffusion model, with every derived quantity computed once.

Time steps are t = 1..T; entry t - 1 of each per-step array belongs to step t, and alpha_bar_0 = 1.

    q(x_t | x_0)        = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)
    q(x_{t-1} | x_t, x_0) = N(c1_t x_0 + c2_t x_t, beta_tilde_t I)
    c1_t = beta_t sqrt(alpha_bar_{t-1}) / (1 - alpha_bar_t)
    c2_t = (1 - alpha_bar_{t-1}) sqrt(alpha_t) / (1 - alpha_bar_t)
    beta_tilde_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)

Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020, eqs. 4, 6-7; the cosine
schedule is Nichol & Dhariwal, "Improved Denoising Diffusion Probabilistic Models", ICML 2021, eq. 17.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Schedule", "SCHEDULES", "schedule_from_betas", "linear_beta_schedule", "cosine_beta_schedule",
           "make_schedule", "alpha_bar_curve"]

SCHEDULES = ("linear", "cosine")


class Schedule(NamedTuple):
    """A noise schedule; every field is float32[T], entry t - 1 belongs to step t.

    Built by `schedule_from_betas`, so samplers, losses and bounds index cached arrays instead of
    recomputing products and square roots inside their loops.

    Attributes:
      betas: beta_t, the variance added at step t.
      alphas: alpha_t = 1 - beta_t.
      alpha_bars: alpha_bar_t = prod_{s <= t} alpha_s.
      alpha_bars_prev: alpha_bar_{t-1} (1 at t = 1).
      sqrt_alpha_bars, sqrt_one_minus_alpha_bars: the mean scale and std of q(x_t | x_0).
      sqrt_recip_alpha_bars, sqrt_recipm1_alpha_bars: x_0 = sqrt(1 / alpha_bar_t) x_t - sqrt(1 / alpha_bar_t - 1) eps.
      posterior_mean_coef1, posterior_mean_coef2: c1_t, c2_t of the mean of q(x_{t-1} | x_t, x_0).
      posterior_variance: beta_tilde_t (0 at t = 1: x_0 is then known).
      posterior_log_variance_clipped: log beta_tilde_t with the t = 1 entry replaced by log beta_tilde_2, so
        that it is finite (Ho et al.'s implementation; only the decoder at t = 1 uses that entry).
    """

    betas: jax.Array
    alphas: jax.Array
    alpha_bars: jax.Array
    alpha_bars_prev: jax.Array
    sqrt_alpha_bars: jax.Array
    sqrt_one_minus_alpha_bars: jax.Array
    sqrt_recip_alpha_bars: jax.Array
    sqrt_recipm1_alpha_bars: jax.Array
    posterior_mean_coef1: jax.Array
    posterior_mean_coef2: jax.Array
    posterior_variance: jax.Array
    posterior_log_variance_clipped: jax.Array

    @property
    def num_steps(self) -> int:
        return self.betas.shape[0]


def schedule_from_betas(betas: jax.Array) -> Schedule:
    """The `Schedule` of the variances beta_1..beta_T (float[T], each in (0, 1))."""
    betas = jnp.asarray(betas, jnp.float32)
    alphas = 1.0 - betas
    alpha_bars = jnp.cumprod(alphas)
    prev = jnp.concatenate([jnp.ones((1,), alpha_bars.dtype), alpha_bars[:-1]])
    post_var = betas * (1.0 - prev) / (1.0 - alpha_bars)
    # With T = 1 there is no beta_tilde_2; the t = 1 entry then falls back to beta_1.
    first = post_var[1] if betas.shape[0] > 1 else betas[0]
    return Schedule(
        betas=betas, alphas=alphas, alpha_bars=alpha_bars, alpha_bars_prev=prev,
        sqrt_alpha_bars=jnp.sqrt(alpha_bars), sqrt_one_minus_alpha_bars=jnp.sqrt(1.0 - alpha_bars),
        sqrt_recip_alpha_bars=jnp.sqrt(1.0 / alpha_bars), sqrt_recipm1_alpha_bars=jnp.sqrt(1.0 / alpha_bars - 1.0),
        posterior_mean_coef1=betas * jnp.sqrt(prev) / (1.0 - alpha_bars),
        posterior_mean_coef2=(1.0 - prev) * jnp.sqrt(alphas) / (1.0 - alpha_bars),
        posterior_variance=post_var,
        posterior_log_variance_clipped=jnp.log(jnp.concatenate([first[None], post_var[1:]])))


def linear_beta_schedule(num_steps: int = 50, beta_start: float = 1e-4, beta_end: float = 2e-2) -> Schedule:
    """beta_t linear from `beta_start` (t = 1) to `beta_end` (t = T) (Ho et al.: 1e-4 to 0.02, T = 1000)."""
    if num_steps < 1 or not 0.0 < beta_start <= beta_end < 1.0:
        raise ValueError(f"need num_steps >= 1 and 0 < beta_start <= beta_end < 1, got "
                         f"{num_steps}, {beta_start}, {beta_end}")
    return schedule_from_betas(jnp.linspace(beta_start, beta_end, num_steps, dtype=jnp.float32))


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
    return schedule_from_betas(jnp.clip(1.0 - f[1:] / f[:-1], 0.0, max_beta))


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
