"""Stochastic gradient Langevin dynamics (SGLD): Langevin steps on minibatch gradients, no accept step."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jgen.mcmc.base import SamplingAlgorithm, check_step_size, noise_source

__all__ = ["SGLDState", "SGLDInfo", "init", "build_kernel", "grad_estimator", "polynomial_schedule",
           "minibatch_sampler"]

PyTree = Any


class SGLDState(NamedTuple):
    """State of an SGLD chain.

    position
        Current position (a pytree of float arrays).
    step
        Number of steps taken (int32): the step-size schedule's argument.
    """

    position: PyTree
    step: jax.Array


class SGLDInfo(NamedTuple):
    """What happened in one step.

    step_size
        The step size `h_t` the schedule gave for this step.
    """

    step_size: jax.Array


def init(position: PyTree, logdensity_fn: Callable | None = None) -> SGLDState:
    """Initial state at `position`, step 0 (`logdensity_fn` is accepted for the common contract, unused)."""
    return SGLDState(position, jnp.zeros((), jnp.int32))


def grad_estimator(logprior_fn: Callable[[PyTree], jax.Array],
                   loglikelihood_fn: Callable[[PyTree, PyTree], jax.Array], data_size: int) -> Callable:
    """Unbiased minibatch estimator of the log-posterior gradient.

        g(theta) = grad log p(theta) + N / n * sum_{i in batch} grad log p(x_i | theta)

    Args:
      logprior_fn: `position -> scalar` log-prior.
      loglikelihood_fn: `(position, datum) -> scalar` log-likelihood of one data point (vmapped over the
        minibatch's leading axis).
      data_size: number of data points `N` in the full data set.

    Returns:
      `estimate(position, minibatch) -> gradient pytree like position`.
    """
    if not isinstance(data_size, int) or data_size < 1:
        raise ValueError(f"data_size must be a positive integer, got {data_size!r}")

    def logdensity_estimate(position, minibatch):
        loglik = jax.vmap(loglikelihood_fn, in_axes=(None, 0))(position, minibatch)
        return logprior_fn(position) + data_size * jnp.mean(loglik)

    return jax.grad(logdensity_estimate)


def polynomial_schedule(a: float, b: float = 1.0, gamma: float = 0.55) -> Callable[[jax.Array], jax.Array]:
    """Step sizes `h_t = a (b + t)^(-gamma)` (Welling & Teh 2011; `gamma` in (0.5, 1] for convergence).

    Args:
      a: scale (> 0).
      b: offset (> 0) that keeps the first steps finite.
      gamma: decay exponent (>= 0; 0 gives the constant step size `a`).

    Returns:
      `schedule(step) -> step size`.
    """
    if not (a > 0 and b > 0 and gamma >= 0):
        raise ValueError(f"polynomial_schedule needs a > 0, b > 0, gamma >= 0; got a={a}, b={b}, gamma={gamma}")

    def schedule(step):
        return a * (b + jnp.asarray(step, jnp.float32)) ** (-gamma)

    return schedule


def build_kernel(noise: str | Callable = "fast") -> Callable:
    """SGLD kernel; the gradient estimator, the minibatch and the step size are given at call time.

        theta' = theta + h g(theta; batch) + sqrt(2 h) z,     z ~ N(0, I)

    (Welling & Teh write the same step with `epsilon = 2 h`.) There is no Metropolis correction: the chain
    samples the posterior only as `h -> 0` (decreasing schedules) and is biased for a fixed `h`.

    Args:
      noise: where the injected noise comes from (`jgen.mcmc.base.noise_source`).

    Returns:
      `kernel(rng_key, state, grad_estimator_fn, minibatch, step_size) -> (SGLDState, SGLDInfo)` with
      `grad_estimator_fn(position, minibatch) -> gradient estimate` (see `grad_estimator`).

    References:
      Welling, M. and Teh, Y. W. (2011). Bayesian learning via stochastic gradient Langevin dynamics. ICML.
    """
    draw = noise_source(noise)

    def kernel(rng_key, state: SGLDState, grad_estimator_fn: Callable[[PyTree, PyTree], PyTree],
               minibatch: PyTree, step_size) -> tuple[SGLDState, SGLDInfo]:
        check_step_size(step_size)
        grad = grad_estimator_fn(state.position, minibatch)
        z, _ = draw(rng_key, state.position)
        noise_scale = jnp.sqrt(2.0 * step_size)
        position = jax.tree.map(lambda x, g, n: x + step_size * g + noise_scale * n, state.position, grad, z)
        return SGLDState(position, state.step + 1), SGLDInfo(jnp.asarray(step_size))

    return kernel


def minibatch_sampler(grad_estimator_fn: Callable[[PyTree, PyTree], PyTree], data: PyTree, batch_size: int,
                      step_size: float | Callable[[jax.Array], jax.Array],
                      noise: str | Callable = "fast") -> SamplingAlgorithm:
    """SGLD that draws its own minibatches, so it fits `step(rng_key, state)` and `sample_chain`.

    Each step draws `batch_size` indices uniformly with replacement from the `N` rows of `data` (an unbiased
    minibatch), and takes the step size from the schedule at `state.step`.

    Args:
      grad_estimator_fn: `(position, minibatch) -> gradient estimate`, e.g. `grad_estimator(...)`.
      data: pytree of arrays sharing a leading axis of size `N`.
      batch_size: minibatch size (>= 1).
      step_size: a constant step size or a schedule `step -> step size` (e.g. `polynomial_schedule`).
      noise: the kernel's noise source (`jgen.mcmc.base.noise_source`).

    Returns:
      `SamplingAlgorithm(init, step)` with `step(rng_key, state) -> (SGLDState, SGLDInfo)`.
    """
    data = jax.tree.map(jnp.asarray, data)
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError("data must hold at least one array with a leading data axis")
    sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in leaves}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"every array in data needs the same leading (data) axis, got sizes {sizes}")
    (data_size,) = sizes
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if callable(step_size):
        schedule = step_size
    else:
        check_step_size(step_size)
        schedule = lambda step: jnp.asarray(step_size, jnp.float32)  # noqa: E731
    kernel = build_kernel(noise)

    def step(rng_key, state):
        batch_key, noise_key = jax.random.split(rng_key)
        idx = jax.random.randint(batch_key, (batch_size,), 0, data_size)
        minibatch = jax.tree.map(lambda x: x[idx], data)
        return kernel(noise_key, state, grad_estimator_fn, minibatch, schedule(state.step))

    return SamplingAlgorithm(init, step)
