"""Random-walk Metropolis-Hastings with a Gaussian proposal (scalar or diagonal scale)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jgen.mcmc.base import check_step_size, metropolis_accept, noise_source, tree_select

__all__ = ["RWMHState", "RWMHInfo", "TARGET_ACCEPTANCE", "init", "build_kernel"]

PyTree = Any

#: Optimal acceptance rate of random-walk Metropolis as the dimension grows (Roberts, Gelman & Gilks 1997).
TARGET_ACCEPTANCE = 0.234


class RWMHState(NamedTuple):
    """State of a random-walk Metropolis chain.

    position
        Current position (a pytree of float arrays).
    logdensity
        `logdensity_fn(position)`, cached so each step evaluates the target once (at the proposal). A target
        that changes between calls (an energy in training) leaves it stale: re-`init` from the position then.
    """

    position: PyTree
    logdensity: jax.Array


class RWMHInfo(NamedTuple):
    """What happened in one transition.

    acceptance_rate
        The Metropolis-Hastings acceptance probability `min(1, p(y) / p(x))` of the proposal `y`.
    is_accepted
        Whether the proposal was accepted (else the chain stayed where it was).
    """

    acceptance_rate: jax.Array
    is_accepted: jax.Array


def init(position: PyTree, logdensity_fn: Callable[[PyTree], jax.Array]) -> RWMHState:
    """Initial state: the position and its log-density."""
    return RWMHState(position, jnp.asarray(logdensity_fn(position)))


def _check_scale(scale: Any) -> None:
    for leaf in jax.tree.leaves(scale):
        try:
            bad = bool(jnp.any(jnp.asarray(leaf) <= 0))
        except jax.errors.ConcretizationTypeError:
            continue
        if bad:
            raise ValueError(f"scale must be positive (a scalar or one value per coordinate), got {scale!r}")


def build_kernel(scale: Any = 1.0, noise: str | Callable = "fast") -> Callable:
    """Random-walk Metropolis-Hastings kernel; the target and step size are given at call time.

    Proposal `y = x + step_size * scale * z`, `z ~ N(0, I)`, which is symmetric, so the chain moves to `y`
    with probability `min(1, p(y) / p(x))`.

    Args:
      scale: per-coordinate proposal scale: a scalar, or a pytree like the position (a diagonal covariance
        `scale**2`); multiplied by the step size.
      noise: where the proposal noise and the uniform come from (`jgen.mcmc.base.noise_source`).

    Returns:
      `kernel(rng_key, state, logdensity_fn, step_size) -> (RWMHState, RWMHInfo)`, one `logdensity_fn`
      evaluation per call; `logdensity_fn` is the unnormalised log-density `position -> scalar`.

    References:
      Metropolis, N. et al. (1953). Equation of state calculations by fast computing machines.
      Hastings, W. K. (1970). Monte Carlo sampling methods using Markov chains and their applications.
    """
    _check_scale(scale)
    scalar_scale = not isinstance(scale, (list, tuple, dict)) and jnp.ndim(scale) == 0
    draw = noise_source(noise)

    def kernel(rng_key: jax.Array, state: RWMHState, logdensity_fn: Callable[[PyTree], jax.Array],
               step_size: float) -> tuple[RWMHState, RWMHInfo]:
        check_step_size(step_size)
        z, u = draw(rng_key, state.position)
        if scalar_scale:
            proposal = jax.tree.map(lambda x, n: x + (step_size * scale) * n, state.position, z)
        else:
            proposal = jax.tree.map(lambda x, s, n: x + step_size * s * n, state.position, scale, z)
        proposal_logdensity = logdensity_fn(proposal)
        is_accepted, acceptance, _ = metropolis_accept(u, proposal_logdensity - state.logdensity)
        new_state = tree_select(is_accepted, RWMHState(proposal, proposal_logdensity), state)
        return new_state, RWMHInfo(acceptance, is_accepted)

    return kernel
