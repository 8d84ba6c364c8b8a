"""Random-walk Metropolis-Hastings with a Gaussian proposal (scalar or diagonal scale)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jgen.mcmc.base import SamplingAlgorithm, check_step_size, metropolis_accept, normal_and_uniform, tree_select

__all__ = ["RWMHState", "RWMHInfo", "TARGET_ACCEPTANCE", "init", "build_kernel", "sampler"]

PyTree = Any

#: Optimal acceptance rate of random-walk Metropolis as the dimension grows (Roberts, Gelman & Gilks 1997).
TARGET_ACCEPTANCE = 0.234


class RWMHState(NamedTuple):
    """State of a random-walk Metropolis chain.

    position
        Current position (a pytree of float arrays).
    logdensity
        `logdensity_fn(position)`, cached so each step evaluates the target once (at the proposal).
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


def build_kernel(logdensity_fn: Callable[[PyTree], jax.Array], scale: Any = 1.0) -> Callable:
    """Random-walk Metropolis-Hastings kernel with a free step size.

    Proposal `y = x + step_size * scale * z`, `z ~ N(0, I)`, which is symmetric, so the chain moves to `y`
    with probability `min(1, p(y) / p(x))`.

    Args:
      logdensity_fn: unnormalised log-density of the target, `position -> scalar`.
      scale: per-coordinate proposal scale: a scalar, or a pytree like the position (a diagonal covariance
        `scale**2`); multiplied by the step size.

    Returns:
      `kernel(rng_key, state, step_size) -> (RWMHState, RWMHInfo)`.

    References:
      Metropolis, N. et al. (1953). Equation of state calculations by fast computing machines.
      Hastings, W. K. (1970). Monte Carlo sampling methods using Markov chains and their applications.
    """
    _check_scale(scale)
    scalar_scale = not isinstance(scale, (list, tuple, dict)) and jnp.ndim(scale) == 0

    def kernel(rng_key: jax.Array, state: RWMHState, step_size: float) -> tuple[RWMHState, RWMHInfo]:
        z, u = normal_and_uniform(rng_key, state.position)
        if scalar_scale:
            proposal = jax.tree.map(lambda x, n: x + (step_size * scale) * n, state.position, z)
        else:
            proposal = jax.tree.map(lambda x, s, n: x + step_size * s * n, state.position, scale, z)
        proposal_logdensity = logdensity_fn(proposal)
        is_accepted, acceptance, _ = metropolis_accept(u, proposal_logdensity - state.logdensity)
        new_state = tree_select(is_accepted, RWMHState(proposal, proposal_logdensity), state)
        return new_state, RWMHInfo(acceptance, is_accepted)

    return kernel


def sampler(logdensity_fn: Callable[[PyTree], jax.Array], step_size: float, scale: Any = 1.0) -> SamplingAlgorithm:
    """Random-walk Metropolis-Hastings with its step size bound.

    Example:
      >>> alg = sampler(logdensity_fn, step_size=0.5)
      >>> state = alg.init(jnp.zeros(2))
      >>> state, info = jax.jit(alg.step)(jax.random.key(0), state)

    Args:
      logdensity_fn: unnormalised log-density, `position -> scalar`.
      step_size: proposal standard deviation (times `scale`), > 0.
      scale: scalar or per-coordinate pytree scale (see `build_kernel`).

    Returns:
      `SamplingAlgorithm(init, step)` with `step(rng_key, state) -> (RWMHState, RWMHInfo)`.
    """
    check_step_size(step_size)
    kernel = build_kernel(logdensity_fn, scale)

    def step(rng_key, state):
        return kernel(rng_key, state, step_size)

    return SamplingAlgorithm(lambda position: init(position, logdensity_fn), step)
