"""Unadjusted Langevin algorithm (ULA) with gradient clipping, the sampler of energy-based models."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jgen.mcmc.base import check_step_size, noise_source, tree_sq_norm

__all__ = ["ULAState", "ULAInfo", "init", "build_kernel"]

PyTree = Any


class ULAState(NamedTuple):
    """State of a ULA chain.

    position
        Current position. Nothing else is cached: with no accept step the gradient is needed only once, at
        the start of each step, and an energy model's parameters may change between calls.
    """

    position: PyTree


class ULAInfo(NamedTuple):
    """What happened in one step.

    logdensity
        Log-density at the position the step started from (free: computed with the gradient).
    grad_norm
        Euclidean norm of the gradient before clipping.
    is_clipped
        Whether clipping changed the gradient.
    """

    logdensity: jax.Array
    grad_norm: jax.Array
    is_clipped: jax.Array


def init(position: PyTree, logdensity_fn: Callable[[PyTree], jax.Array] | None = None) -> ULAState:
    """Initial state at `position` (`logdensity_fn` is accepted for the common contract and not evaluated)."""
    return ULAState(position)


def build_kernel(*, clip_norm: float | None = None, clip_value: float | None = None,
                 noise_scale: float | None = None, bounds: tuple[float, float] | None = None,
                 noise: str | Callable = "fast") -> Callable:
    """ULA kernel with gradient clipping; the target and the step size `h` are given at call time.

        x' = clamp(x + h clip(grad log p(x)) + s z),    z ~ N(0, I),   s = sqrt(2 h) by default

    No Metropolis correction: for a fixed `h` the chain is biased by O(h). Clipping bounds each step's
    drift by `h * clip_norm` (or `h * clip_value` per coordinate), which keeps short-run samplers of
    energy-based models stable when the energy is still rough. Setting `noise_scale` decouples the noise from
    the step size (as in short-run EBM samplers); then the chain no longer targets `p` itself.

    Args:
      clip_norm: rescale the gradient to this Euclidean norm when it is larger (over all leaves; vmap the
        kernel to clip each sample of a batch separately).
      clip_value: clip each gradient coordinate to `[-clip_value, clip_value]` (applied before `clip_norm`).
      noise_scale: standard deviation of the injected noise; default `sqrt(2 h)`.
      bounds: `(low, high)` to clamp positions to after each step (e.g. pixel range), or None.
      noise: where the injected noise comes from (`jgen.mcmc.base.noise_source`).

    Returns:
      `kernel(rng_key, state, logdensity_fn, step_size) -> (ULAState, ULAInfo)`, one
      `jax.value_and_grad(logdensity_fn)` per call; `logdensity_fn` is the differentiable log-density
      `position -> scalar` (for an EBM, `lambda x: -energy(params, x)`).

    References:
      Roberts, G. O. and Tweedie, R. L. (1996). Exponential convergence of Langevin distributions and their
      discrete approximations. Bernoulli 2(4).
      Du, Y. and Mordatch, I. (2019). Implicit generation and modeling with energy based models. NeurIPS.
    """
    for name, value in (("clip_norm", clip_norm), ("clip_value", clip_value), ("noise_scale", noise_scale)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be positive or None, got {value!r}")
    if bounds is not None:
        if len(bounds) != 2 or not bounds[0] < bounds[1]:
            raise ValueError(f"bounds must be (low, high) with low < high, got {bounds!r}")
    draw = noise_source(noise)

    def kernel(rng_key, state: ULAState, logdensity_fn: Callable[[PyTree], jax.Array],
               step_size) -> tuple[ULAState, ULAInfo]:
        check_step_size(step_size)
        logdensity, grad = jax.value_and_grad(logdensity_fn)(state.position)
        grad_norm = jnp.sqrt(tree_sq_norm(grad))
        clipped = grad
        if clip_value is not None:
            clipped = jax.tree.map(lambda g: jnp.clip(g, -clip_value, clip_value), clipped)
        if clip_norm is not None:
            norm = jnp.sqrt(tree_sq_norm(clipped))
            factor = jnp.minimum(1.0, clip_norm / jnp.maximum(norm, jnp.finfo(norm.dtype).tiny))
            clipped = jax.tree.map(lambda g: g * factor, clipped)
        is_clipped = jnp.sqrt(tree_sq_norm(jax.tree.map(jnp.subtract, clipped, grad))) > 0
        z, _ = draw(rng_key, state.position)
        scale = jnp.sqrt(2.0 * step_size) if noise_scale is None else noise_scale
        position = jax.tree.map(lambda x, g, n: x + step_size * g + scale * n, state.position, clipped, z)
        if bounds is not None:
            position = jax.tree.map(lambda x: jnp.clip(x, bounds[0], bounds[1]), position)
        return ULAState(position), ULAInfo(logdensity, grad_norm, is_clipped)

    return kernel
