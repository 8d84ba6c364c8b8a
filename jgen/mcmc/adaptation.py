"""Step-size adaptation towards a target acceptance rate by dual averaging."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["DualAveragingState", "dual_averaging_init", "dual_averaging_update", "adapted_step_size"]


class DualAveragingState(NamedTuple):
    """State of Nesterov's dual averaging on the log step size.

    log_step_size
        The step size to use at the next step (explores around `mu`).
    log_step_size_avg
        The weighted average of past iterates: the step size to freeze after warm-up.
    step
        Number of updates so far.
    avg_error
        Running average of `target - acceptance` (the "H bar" of Hoffman & Gelman).
    mu
        Shrinkage point, `log(10 * initial_step_size)`.
    """

    log_step_size: jax.Array
    log_step_size_avg: jax.Array
    step: jax.Array
    avg_error: jax.Array
    mu: jax.Array


def dual_averaging_init(step_size: float) -> DualAveragingState:
    """Starts the adaptation from `step_size` (> 0)."""
    log_h = jnp.log(jnp.asarray(step_size, jnp.float32))
    zero = jnp.zeros((), jnp.float32)
    return DualAveragingState(log_h, log_h, jnp.zeros((), jnp.int32), zero, jnp.log(10.0) + log_h)


def dual_averaging_update(state: DualAveragingState, acceptance: jax.Array, target: float, *,
                          gamma: float = 0.05, t0: float = 10.0, kappa: float = 0.75) -> DualAveragingState:
    """One dual-averaging update from an observed acceptance probability.

    With `t` the update count and `H_t = target - acceptance_t`:

        Hbar_t = (1 - 1/(t + t0)) Hbar_{t-1} + H_t / (t + t0)
        log h_{t+1} = mu - sqrt(t) / gamma * Hbar_t
        log hbar_{t+1} = t^-kappa log h_{t+1} + (1 - t^-kappa) log hbar_t

    Too-high acceptance lowers `Hbar` and so raises the step size. Pass the acceptance probability averaged
    over chains to adapt one step size shared by all of them.

    Args:
      state: current adaptation state.
      acceptance: acceptance probability in [0, 1] of the last transition (NaN counts as 0).
      target: the acceptance rate to reach, e.g. 0.234 (RWMH) or 0.574 (MALA).
      gamma, t0, kappa: the adaptation's regularisation, iteration offset and averaging decay
        (Hoffman & Gelman's defaults).

    Returns:
      The updated state.

    References:
      Nesterov, Y. (2009). Primal-dual subgradient methods for convex problems.
      Hoffman, M. D. and Gelman, A. (2014). The No-U-Turn sampler, Algorithm 5. JMLR 15.
    """
    acceptance = jnp.nan_to_num(jnp.asarray(acceptance, jnp.float32), nan=0.0)
    t = (state.step + 1).astype(jnp.float32)
    eta = 1.0 / (t + t0)
    avg_error = (1.0 - eta) * state.avg_error + eta * (target - acceptance)
    log_h = state.mu - jnp.sqrt(t) / gamma * avg_error
    weight = t ** (-kappa)
    log_h_avg = weight * log_h + (1.0 - weight) * state.log_step_size_avg
    return DualAveragingState(log_h, log_h_avg, state.step + 1, avg_error, state.mu)


def adapted_step_size(state: DualAveragingState) -> jax.Array:
    """The step size to freeze after warm-up: `exp` of the averaged log step size."""
    return jnp.exp(state.log_step_size_avg)
