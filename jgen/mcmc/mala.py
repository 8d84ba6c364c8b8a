"""Metropolis-adjusted Langevin algorithm (MALA)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jgen.mcmc.base import check_step_size, metropolis_accept, noise_source, tree_select, tree_sq_norm

__all__ = ["MALAState", "MALAInfo", "TARGET_ACCEPTANCE", "init", "build_kernel"]

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
        `value_and_grad` evaluation, at the proposal. A target that changes between calls (an energy in
        training) leaves both stale: re-`init` from the position then.
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


def build_kernel(noise: str | Callable = "fast") -> Callable:
    """MALA kernel; the target and the step size `h` are given at call time.

    Proposal (one Euler-Maruyama step of the Langevin diffusion `dX = grad log p(X) dt + sqrt(2) dW`):

        y = x + h grad log p(x) + sqrt(2 h) z,            z ~ N(0, I)

    accepted with probability `min(1, p(y) q(x | y) / (p(x) q(y | x)))`, where
    `log q(y | x) = -|y - x - h grad log p(x)|^2 / (4 h)`. The forward term equals `|z|^2 / 2`, so only the
    reverse move is computed. A proposal at which the log-density or its gradient is NaN (or the density
    +inf) is rejected; its values never enter the state.

    Args:
      noise: where the proposal noise and the uniform come from (`jgen.mcmc.base.noise_source`).

    Returns:
      `kernel(rng_key, state, logdensity_fn, step_size) -> (MALAState, MALAInfo)`, one
      `jax.value_and_grad(logdensity_fn)` evaluation per call; `logdensity_fn` is the unnormalised,
      differentiable log-density `position -> scalar`.

    References:
      Roberts, G. O. and Tweedie, R. L. (1996). Exponential convergence of Langevin distributions and their
      discrete approximations. Bernoulli 2(4).
    """
    draw = noise_source(noise)

    def kernel(rng_key: jax.Array, state: MALAState, logdensity_fn: Callable[[PyTree], jax.Array],
               step_size: float) -> tuple[MALAState, MALAInfo]:
        check_step_size(step_size)
        x, logdensity, grad = state
        z, u = draw(rng_key, x)
        noise_scale = jnp.sqrt(2.0 * step_size)
        y = jax.tree.map(lambda a, g, n: a + step_size * g + noise_scale * n, x, grad, z)
        y_logdensity, y_grad = jax.value_and_grad(logdensity_fn)(y)
        reverse = jax.tree.map(lambda a, b, g: a - b - step_size * g, x, y, y_grad)
        log_ratio = (y_logdensity - logdensity
                     - tree_sq_norm(reverse) / (4.0 * step_size) + 0.5 * tree_sq_norm(z))
        log_ratio = jnp.where(y_logdensity == jnp.inf, -jnp.inf, log_ratio)
        is_accepted, acceptance, _ = metropolis_accept(u, log_ratio)
        new_state = tree_select(is_accepted, MALAState(y, y_logdensity, y_grad), state)
        return new_state, MALAInfo(acceptance, is_accepted)

    return kernel
