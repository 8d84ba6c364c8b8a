"""Samplers of a trained noise predictor: ancestral DDPM and DDIM, each one `lax.scan` over its steps.

    DDPM (Ho et al. 2020, Alg. 2):  x_{t-1} = mu_theta(x_t, t) + sigma_t z,  sigma_t^2 = beta_t or beta_tilde_t
    DDIM (Song, Meng & Ermon, "Denoising Diffusion Implicit Models", ICLR 2021, eq. 12), from t to s < t:
      x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_bar_t)
      x_s = sqrt(alpha_bar_s) x0_hat + sqrt(1 - alpha_bar_s - sigma^2) eps_theta + sigma z
      sigma = eta sqrt((1 - alpha_bar_s) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_s)

eta = 0 is deterministic (x_T -> x_0 is a fixed map, so latents can be interpolated); eta = 1 on the full
sequence (s = t - 1) has sigma^2 = beta_tilde_t and is the DDPM ancestral step with the posterior variance.

Both samplers return x_0 [batch, ...] and, with `every=k`, also the states x_T, then the state after every
k-th step, stacked as [num_steps // k + 1, batch, ...] (the scan is nested so that only those are kept).
`eps_fn(x_t, t)` takes x_t [batch, ...] and int32 t [batch] in 1..T. The scans are jitted with eps_fn as a
static argument: calls with the same function object (and shapes) compile once; a fresh closure over new
parameters compiles again, so to sample from changing parameters jit a caller that takes them as an argument.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jgen.diffusion.schedules import Schedule, alpha_bar_curve

__all__ = ["VARIANCES", "predict_x0", "ddpm_step", "ddim_sigma", "ddim_step", "ddim_timesteps", "ddpm_sample",
           "ddim_sample"]

EpsFn = Callable[[jax.Array, jax.Array], jax.Array]
VARIANCES = ("beta", "posterior")


def _clip(x0, clip_denoised):
    return jnp.clip(x0, -1.0, 1.0) if clip_denoised else x0


def predict_x0(schedule: Schedule, x_t: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    """x0_hat = sqrt(1 / alpha_bar_t) x_t - sqrt(1 / alpha_bar_t - 1) eps, for a scalar step t."""
    return schedule.sqrt_recip_alpha_bars[t - 1] * x_t - schedule.sqrt_recipm1_alpha_bars[t - 1] * eps


def ddpm_step(eps_fn: EpsFn, schedule: Schedule, x_t: jax.Array, t: jax.Array, key: jax.Array,
              variance: str = "beta", clip_denoised: bool = False) -> jax.Array:
    """One ancestral step x_t -> x_{t-1} at a scalar step t; no noise is added at t = 1.

    Args:
      variance: "beta" (sigma_t^2 = beta_t, Ho et al.'s samples) or "posterior" (beta_tilde_t).
      clip_denoised: clip x0_hat to [-1, 1] and use the posterior mean c1 x0_hat + c2 x_t (for images);
        otherwise the mean is (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t), which is the same
        without the clip.
    """
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")
    eps = eps_fn(x_t, jnp.full(x_t.shape[:1], t, jnp.int32))
    if clip_denoised:
        x0 = _clip(predict_x0(schedule, x_t, t, eps), True)
        mu = schedule.posterior_mean_coef1[t - 1] * x0 + schedule.posterior_mean_coef2[t - 1] * x_t
    else:
        a, ab = schedule.alphas[t - 1], schedule.alpha_bars[t - 1]
        mu = (x_t - (1.0 - a) / jnp.sqrt(1.0 - ab) * eps) / jnp.sqrt(a)
    var = (schedule.betas if variance == "beta" else schedule.posterior_variance)[t - 1]
    z = jnp.where(t > 1, jax.random.normal(key, x_t.shape, x_t.dtype), 0.0)
    return mu + jnp.sqrt(var) * z


def ddim_sigma(schedule: Schedule, t: jax.Array, t_prev: jax.Array, eta: float) -> jax.Array:
    """The DDIM noise scale sigma of the step t -> t_prev (0 <= t_prev < t), Song et al. eq. 16."""
    curve = alpha_bar_curve(schedule)
    ab, ab_prev = curve[t], curve[t_prev]
    return eta * jnp.sqrt((1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev))


def ddim_step(eps_fn: EpsFn, schedule: Schedule, x_t: jax.Array, t: jax.Array, t_prev: jax.Array,
              key: jax.Array, eta: float = 0.0, clip_denoised: bool = False) -> jax.Array:
    """One DDIM step x_t -> x_{t_prev} for scalar steps 0 <= t_prev < t <= T (t_prev = 0 returns x0_hat)."""
    eps = eps_fn(x_t, jnp.full(x_t.shape[:1], t, jnp.int32))
    x0 = _clip(predict_x0(schedule, x_t, t, eps), clip_denoised)
    if clip_denoised:  # the direction term uses the noise consistent with the clipped x0_hat
        eps = (x_t - schedule.sqrt_alpha_bars[t - 1] * x0) / schedule.sqrt_one_minus_alpha_bars[t - 1]
    ab_prev = alpha_bar_curve(schedule)[t_prev]
    sigma = ddim_sigma(schedule, t, t_prev, eta)
    direction = jnp.sqrt(jnp.maximum(1.0 - ab_prev - sigma**2, 0.0)) * eps
    return jnp.sqrt(ab_prev) * x0 + direction + sigma * jax.random.normal(key, x_t.shape, x_t.dtype)


def ddim_timesteps(num_steps: int, num_sample_steps: int) -> np.ndarray:
    """`num_sample_steps` evenly spaced steps from T down to 1 (int32, strictly decreasing, first T, last 1)."""
    if not 1 <= num_sample_steps <= num_steps:
        raise ValueError(f"need 1 <= num_sample_steps <= T = {num_steps}, got {num_sample_steps}")
    ts = np.unique(np.round(np.linspace(1, num_steps, num_sample_steps)).astype(np.int32))[::-1]
    return np.ascontiguousarray(ts)


def _scan(step: Callable, x: jax.Array, xs, every: int | None):
    """lax.scan of step(x, inputs) -> x; with `every`, also the stack of x_T and every k-th state."""
    def body(carry, inputs):
        return step(carry, inputs), None

    n = jax.tree.leaves(xs)[0].shape[0]
    if every is None:
        return jax.lax.scan(body, x, xs)[0]
    if every < 1:
        raise ValueError(f"every must be >= 1 (keep every k-th state), got {every}")
    chunks, head = n // every, (n // every) * every

    def chunk(carry, inputs):
        carry = jax.lax.scan(body, carry, inputs)[0]
        return carry, carry

    grouped = jax.tree.map(lambda a: a[:head].reshape((chunks, every) + a.shape[1:]), xs)
    x_mid, states = jax.lax.scan(chunk, x, grouped)
    x_end = jax.lax.scan(body, x_mid, jax.tree.map(lambda a: a[head:], xs))[0]
    return x_end, jnp.concatenate([x[None], states])


def ddpm_sample(eps_fn: EpsFn, schedule: Schedule, rng: jax.Array, shape: Sequence[int], *,
                variance: str = "beta", clip_denoised: bool = False, every: int | None = None):
    """Draws x_0 [shape] by T ancestral steps from x_T ~ N(0, I) (see `ddpm_step`).

    With the defaults and the same rng this draws what `jgen.diffusion.ddpm.ancestral_sample` draws.
    """
    shape = tuple(shape)
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")
    k_init, k_steps = jax.random.split(rng)
    return _ddpm_scan(eps_fn, schedule, jax.random.normal(k_init, shape),
                      jax.random.split(k_steps, schedule.num_steps), variance, clip_denoised, every)


@functools.partial(jax.jit, static_argnums=(0, 4, 5, 6))
def _ddpm_scan(eps_fn, schedule, x_T, keys, variance, clip_denoised, every):
    # Jitted with eps_fn static: calls with the same eps_fn, shapes and options reuse one compilation.
    ts = jnp.arange(schedule.num_steps, 0, -1, dtype=jnp.int32)

    def step(x, inputs):
        t, key = inputs
        return ddpm_step(eps_fn, schedule, x, t, key, variance, clip_denoised)

    return _scan(step, x_T, (ts, keys), every)


def ddim_sample(eps_fn: EpsFn, schedule: Schedule, rng: jax.Array, shape: Sequence[int], *,
                num_sample_steps: int | None = None, timesteps: Sequence[int] | None = None, eta: float = 0.0,
                x_T: jax.Array | None = None, clip_denoised: bool = False, every: int | None = None):
    """Draws x_0 [shape] by DDIM over a decreasing sub-sequence of 1..T (then to 0).

    Args:
      num_sample_steps: S, for S evenly spaced steps (`ddim_timesteps`); default T (the full sequence).
      timesteps: or an explicit strictly decreasing sequence in 1..T (a numpy/list value, not traced).
      eta: 0 (deterministic) .. 1 (the ancestral variance on the full sequence).
      x_T: the starting noise [shape]; default drawn from `rng` (as `ddpm_sample` draws it).
      every: keep x_T and every k-th state (see the module docstring).
    """
    shape = tuple(shape)
    if timesteps is None:
        timesteps = ddim_timesteps(schedule.num_steps, num_sample_steps or schedule.num_steps)
    elif num_sample_steps is not None:
        raise ValueError("pass num_sample_steps or timesteps, not both")
    ts = np.asarray(timesteps, np.int32)
    if ts.ndim != 1 or ts.size == 0 or np.any(np.diff(ts) >= 0) or ts[0] > schedule.num_steps or ts[-1] < 1:
        raise ValueError(f"timesteps must be a strictly decreasing sequence in 1..{schedule.num_steps}, got {ts}")
    k_init, k_steps = jax.random.split(rng)
    if x_T is None:
        x_T = jax.random.normal(k_init, shape)
    elif tuple(x_T.shape) != shape:
        raise ValueError(f"x_T has shape {tuple(x_T.shape)}, expected {shape}")
    t_prev = np.append(ts[1:], 0).astype(np.int32)
    return _ddim_scan(eps_fn, schedule, x_T, jnp.asarray(ts), jnp.asarray(t_prev), jax.random.split(k_steps, ts.size),
                      jnp.float32(eta), clip_denoised, every)


@functools.partial(jax.jit, static_argnums=(0, 7, 8))
def _ddim_scan(eps_fn, schedule, x_T, ts, t_prev, keys, eta, clip_denoised, every):
    def step(x, inputs):
        t, s, key = inputs
        return ddim_step(eps_fn, schedule, x, t, s, key, eta, clip_denoised)

    return _scan(step, x_T, (ts, t_prev, keys), every)
