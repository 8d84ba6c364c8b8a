"""Metropolis-adjusted Langevin algorithm (MALA)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jgen.mcmc.base import (SamplingAlgorithm, check_step_size, metropolis_accept, normal_and_uniform,
                            tree_select, tree_sq_norm)

__all__ = ["MALAState", "MALAInfo", "TARGET_ACCEPTANCE", "init", "build_kernel", "sampler"]

PyTree = Any

#: Optimal acceptance rate of MALA as the dimension grows (Roberts & Rosenthal 1998).
TARGET_ACCEPTANCE = 0.574


class MALAState(NamedTuple):
    """State of a MALA chain.

    position
        Current position (a pytree of float arrays).
    logdensity
        `logdensity_fn(position)`.
    logdensity_grad
        Its gradient (a pytree like `position`). Caching both means each step costs exactly one
        `value_and_grad` evaluation, at the proposal.
    """

    position: PyTree
    logdensity: jax.Array
    logdensity_grad: PyTree


class MALAInfo(NamedTuple):
    """What happened in one transition.

    acceptance_rate
        The Metropolis-Hastings acceptance probability of the proposal (0 when the target or its gradient
        is NaN or +inf there).
    is_accepted
        Whether the proposal was accepted.
    """

    acceptance_rate: jax.Array
    is_accepted: jax.Array


def init(position: PyTree, logdensity_fn: Callable[[PyTree], jax.Array]) -> MALAState:
    """Initial state: the position, its log-density and gradient."""
    logdensity, grad = jax.value_and_grad(logdensity_fn)(position)
    return MALAState(position, logdensity, grad)


def build_kernel(logdensity_fn: Callable[[PyTree], jax.Array]) -> Callable:
    """MALA kernel with a free step size `h`.

    Proposal (one Euler-Maruyama step of the Langevin diffusion `dX = grad log p(X) dt + sqrt(2) dW`):

        y = x + h grad log p(x) + sqrt(2 h) z,            z ~ N(0, I)

    accepted with probability `min(1, p(y) q(x | y) / (p(x) q(y | x)))`, where
    `log q(y | x) = -|y - x - h grad log p(x)|^2 / (4 h)`. The forward term equals `|z|^2 / 2`, so only the
    reverse move is computed. A proposal at which the log-density or its gradient is NaN (or the density
    +inf) is rejected; its values never enter the state.

    Args:
      logdensity_fn: unnormalised log-density, `position -> scalar`, differentiable.

    Returns:
      `kernel(rng_key, state, step_size) -> (MALAState, MALAInfo)`; one `value_and_grad` per call.

    References:
      Roberts, G. O. and Tweedie, R. L. (1996). Exponential convergence of Langevin distributions and their
      discrete approximations. Bernoulli 2(4).
    """
    value_and_grad = jax.value_and_grad(logdensity_fn)

    def kernel(rng_key: jax.Array, state: MALAState, step_size: float) -> tuple[MALAState, MALAInfo]:
        x, logdensity, grad = state
        z, u = normal_and_uniform(rng_key, x)
        noise_scale = jnp.sqrt(2.0 * step_size)
        y = jax.tree.map(lambda a, g, n: a + step_size * g + noise_scale * n, x, grad, z)
        y_logdensity, y_grad = value_and_grad(y)
        reverse = jax.tree.map(lambda a, b, g: a - b - step_size * g, x, y, y_grad)
        log_ratio = (y_logdensity - logdensity
                     - tree_sq_norm(reverse) / (4.0 * step_size) + 0.5 * tree_sq_norm(z))
        log_ratio = jnp.where(y_logdensity == jnp.inf, -jnp.inf, log_ratio)
        is_accepted, acceptance, _ = metropolis_accept(u, log_ratio)
        new_state = tree_select(is_accepted, MALAState(y, y_logdensity, y_grad), state)
        return new_state, MALAInfo(acceptance, is_accepted)

    return kernel


def sampler(logdensity_fn: Callable[[PyTree], jax.Array], step_size: float) -> SamplingAlgorithm:
    """MALA with its step size bound.

    Example:
      >>> alg = sampler(logdensity_fn, step_size=0.1)
      >>> state = alg.init(jnp.zeros(2))
      >>> state, info = jax.jit(alg.step)(jax.random.key(0), state)

    Args:
      logdensity_fn: unnormalised log-density, `position -> scalar`.
      step_size: Langevin time step `h` > 0 (the proposal's noise variance is `2 h`).

    Returns:
      `SamplingAlgorithm(init, step)` with `step(rng_key, state) -> (MALAState, MALAInfo)`.
    """
    check_step_size(step_size)
    kernel = build_kernel(logdensity_fn)

    def step(rng_key, state):
        return kernel(rng_key, state, step_size)

    return SamplingAlgorithm(lambda position: init(position, logdensity_fn), step)
