"""Running chains: `lax.scan` over steps, `vmap` over chains, thinning, warm-up with step-size adaptation."""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jgen.mcmc.adaptation import adapted_step_size, dual_averaging_init, dual_averaging_update
from jgen.mcmc.base import check_step_size
from jgen.progress import scan_with_progress

__all__ = ["ChainResult", "sample_chain", "STEP_SIZE_COLLAPSE"]

PyTree = Any

#: `sample_chain` warns when the warm-up adapts the step size below this fraction of the initial one.
STEP_SIZE_COLLAPSE = 1e-4


class ChainResult(NamedTuple):
    """The output of `sample_chain`.

    samples
        `transform(state)` at every `thin`-th step after warm-up, shaped
        `[num_chains, num_steps // thin, ...]` (no chain axis when `num_chains` is None).
    final_state
        The last state of every chain (batched like the initial state).
    info_mean
        The kernel's info, each field averaged over all post-warm-up steps (thinned or not), one value per
        chain: for Metropolis kernels `info_mean.acceptance_rate` is the mean acceptance probability and
        `info_mean.is_accepted` the fraction of accepted proposals.
    step_size
        The step size used after warm-up (adapted when `target_accept` was given), or None for kernels
        whose parameters are all bound.
    """

    samples: PyTree
    final_state: PyTree
    info_mean: PyTree
    step_size: jax.Array | None


def _position(state: Any) -> PyTree:
    return state.position


def sample_chain(kernel: Callable, init_state: PyTree, num_steps: int, key: jax.Array, *,
                 logdensity_fn: Callable[[PyTree], jax.Array] | None = None, num_chains: int | None = None,
                 thin: int = 1, warmup: int = 0, step_size: float | None = None,
                 target_accept: float | None = None, transform: Callable[[Any], PyTree] | None = None,
                 progress: bool = True, progress_every: int | None = None) -> ChainResult:
    """Runs `num_chains` chains of `kernel` for `warmup + num_steps` steps, keeping every `thin`-th state.

    Steps are a `jax.lax.scan`; chains are a `jax.vmap` inside the scan body (so the progress bar's host
    callback fires once per step, not once per chain). Thinning is a nested scan: the skipped states are
    never stored. The whole run is one jitted computation, compiled once per (kernel, shapes, static
    arguments): pass the same kernel object to reuse it.

    The kernel is called as `kernel(rng_key, state, [logdensity_fn,] [step_size])`, with each bracketed
    argument passed when it is given here:

    * `jgen.mcmc.mala.build_kernel()` with `logdensity_fn` and `step_size`: the blackjax contract. The
      target is an argument of the compiled run, not a constant baked into it: inside a jitted training step
      `logdensity_fn=lambda x: -energy(params, x)` with traced `params` compiles once, and outside one
      `jax.tree_util.Partial(neg_energy, params)` does the same (its `params` are traced leaves).
    * `as_sampler(...).step` alone, `kernel(rng_key, state)`, with every parameter bound; warm-up steps are
      simply discarded.

    With `target_accept`, the warm-up adapts one step size shared by all chains by dual averaging on the
    chain-averaged acceptance probability (`jgen.mcmc.adaptation`), then freezes it for sampling.

    Args:
      kernel: the transition kernel (see above).
      init_state: the initial state; with `num_chains`, a batch of states with a leading axis of size
        `num_chains` (e.g. `jax.vmap(lambda x: init(x, logdensity_fn))(positions)`), else one chain's state.
      num_steps: post-warm-up steps per chain; a multiple of `thin`.
      key: PRNG key.
      logdensity_fn: the target's unnormalised log-density `position -> scalar`, passed to the kernel at
        every step: a plain function (outside `jit`, a new function object compiles anew) or a
        `jax.tree_util.Partial`, whose bound arguments are traced.
      num_chains: number of chains, or None for a single chain (outputs then have no chain axis).
      thin: keep every `thin`-th state.
      warmup: steps run (and adapted, see above) before sampling; their states are not kept.
      step_size: initial or fixed step size for a kernel that takes one.
      target_accept: acceptance rate the warm-up adapts towards (e.g. `jgen.mcmc.rwmh.TARGET_ACCEPTANCE`);
        needs `step_size` and `warmup > 0`, and an info with an `acceptance_rate` field.
      transform: what to keep of each chain's state, `state -> pytree` (vmapped over chains); default
        `state.position`. Pass the same function object across calls to avoid recompiling.
      progress: show a tqdm bar (only when stderr is a terminal).
      progress_every: steps between bar updates (default: 1% of the run).

    Returns:
      A `ChainResult`.

    Raises:
      ValueError: non-positive sizes, `num_steps` not a multiple of `thin`, `target_accept` without a step
        size or warm-up, an initial state whose leading axis is not `num_chains`, a log-density that is not
        finite at any initial position (checked when the initial state is concrete, i.e. outside `jit`).

    Warns:
      RuntimeWarning: when the warm-up shrinks the step size below `STEP_SIZE_COLLAPSE` times its initial
        value (checked when the result is concrete).
    """
    for name, value, low in (("num_steps", num_steps, 1), ("thin", thin, 1), ("warmup", warmup, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if num_steps % thin:
        raise ValueError(f"num_steps ({num_steps}) must be a multiple of thin ({thin}); "
                         f"e.g. num_steps={num_steps - num_steps % thin or thin}")
    if num_chains is not None:
        if not isinstance(num_chains, int) or isinstance(num_chains, bool) or num_chains < 1:
            raise ValueError(f"num_chains must be a positive integer or None, got {num_chains!r}")
        for leaf in jax.tree.leaves(init_state):
            if jnp.ndim(leaf) == 0 or jnp.shape(leaf)[0] != num_chains:
                raise ValueError(
                    f"init_state must hold one state per chain (leading axis {num_chains}), found a leaf of "
                    f"shape {jnp.shape(leaf)}; build it with jax.vmap(init)(positions)")
    if target_accept is not None:
        if step_size is None:
            raise ValueError("target_accept needs step_size (and a kernel that takes a step size)")
        if warmup == 0:
            raise ValueError("target_accept needs warmup > 0 steps to adapt the step size in")
        if not 0.0 < float(target_accept) < 1.0:
            raise ValueError(f"target_accept must be in (0, 1), got {target_accept}")
        target_accept = float(target_accept)
    if step_size is not None:
        check_step_size(step_size)
        step_size = jnp.asarray(step_size, jnp.float32)
    if logdensity_fn is not None:
        if not callable(logdensity_fn):
            raise TypeError(f"logdensity_fn must be a function position -> scalar, got {logdensity_fn!r}")
        if not isinstance(logdensity_fn, jax.tree_util.Partial):  # a pytree, so it can be a jit argument
            logdensity_fn = jax.tree_util.Partial(logdensity_fn)
    _check_initial_logdensity(init_state, logdensity_fn, num_chains)
    out = _sample_chain(kernel, init_state, key, step_size, logdensity_fn, num_steps=num_steps,
                        num_chains=num_chains, thin=thin, warmup=warmup, target_accept=target_accept,
                        transform=transform or _position, progress=bool(progress),
                        progress_every=progress_every)
    if target_accept is not None:
        _warn_if_step_size_collapsed(step_size, out, target_accept)
    return out


def _concrete(x: Any) -> np.ndarray | None:
    """`x` as a NumPy array, or None when it is traced (inside someone's `jit` or `vmap`)."""
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


@jax.jit
def _logdensities(logdensity_fn, positions):
    return jax.vmap(logdensity_fn)(positions)


def _check_initial_logdensity(init_state: Any, logdensity_fn: Any, num_chains: int | None) -> None:
    """Refuses an initial state whose log-density is non-finite at every position (no chain could move)."""
    if hasattr(init_state, "logdensity"):  # cached by the state (RWMH, MALA)
        values = _concrete(init_state.logdensity)
    elif logdensity_fn is not None and hasattr(init_state, "position"):
        positions = init_state.position
        if any(_concrete(leaf) is None for leaf in jax.tree.leaves(positions)):
            return
        if num_chains is None:
            positions = jax.tree.map(lambda x: x[None], positions)
        values = np.asarray(_logdensities(logdensity_fn, positions))
    else:
        return
    if values is None or np.any(np.isfinite(values)):
        return
    shown = ", ".join(str(v) for v in sorted(set(values.ravel().tolist()), key=str)[:3])
    raise ValueError(
        f"the log-density is not finite at any initial position ({values.size} chain(s), values {shown}), so no "
        f"chain can start. Expected a finite log-density at the initial positions: start the chains inside the "
        f"target's support, or check logdensity_fn for NaN (e.g. the log or sqrt of a negative number).")


def _warn_if_step_size_collapsed(initial: jax.Array, out: ChainResult, target_accept: float) -> None:
    adapted, accept = _concrete(out.step_size), _concrete(out.info_mean.acceptance_rate)
    if adapted is None or accept is None:
        return
    initial, adapted = float(initial), float(adapted)
    if not adapted < STEP_SIZE_COLLAPSE * initial:
        return
    warnings.warn(
        f"the warm-up shrank the step size from {initial:.3g} to {adapted:.3g} ({initial / adapted:.1e} times "
        f"smaller) to reach acceptance {target_accept}; mean acceptance after warm-up {float(np.mean(accept)):.3f}. "
        f"Chains with such steps barely move. Check that logdensity_fn is finite and smooth around the chains, "
        f"and give an initial step_size on the target's scale.", RuntimeWarning, stacklevel=3)


@functools.partial(jax.jit, static_argnames=("kernel", "num_steps", "num_chains", "thin", "warmup",
                                             "target_accept", "transform", "progress", "progress_every"))
def _sample_chain(kernel, init_state, key, step_size, logdensity_fn, *, num_steps, num_chains, thin, warmup,
                  target_accept, transform, progress, progress_every):
    states = init_state if num_chains is not None else jax.tree.map(lambda x: x[None], init_state)
    chains = num_chains or 1
    has_step_size = step_size is not None
    target = () if logdensity_fn is None else (logdensity_fn,)

    def step_all(key, states, h):
        keys = jax.random.split(key, chains)
        if has_step_size:
            return jax.vmap(lambda k, s: kernel(k, s, *target, h))(keys, states)
        return jax.vmap(lambda k, s: kernel(k, s, *target))(keys, states)

    warmup_key, sample_key = jax.random.split(key)

    if warmup:
        if target_accept is not None:
            def warmup_body(carry, key):
                states, da = carry
                states, info = step_all(key, states, jnp.exp(da.log_step_size))
                if not hasattr(info, "acceptance_rate"):
                    raise ValueError(f"target_accept needs a kernel whose info has an acceptance_rate field; "
                                     f"got {type(info).__name__} (a kernel without an accept step?)")
                da = dual_averaging_update(da, jnp.mean(info.acceptance_rate), target_accept)
                return (states, da), None

            (states, da), _ = scan_with_progress(
                warmup_body, (states, dual_averaging_init(step_size)), jax.random.split(warmup_key, warmup),
                desc="mcmc warm-up", every=progress_every, enabled=progress)
            step_size = adapted_step_size(da)
        else:
            def warmup_body(states, key):
                return step_all(key, states, step_size)[0], None

            states, _ = scan_with_progress(warmup_body, states, jax.random.split(warmup_key, warmup),
                                           desc="mcmc warm-up", every=progress_every, enabled=progress)

    info_shape = jax.eval_shape(lambda s, k: step_all(k, s, step_size)[1], states, sample_key)
    info_zero = jax.tree.map(lambda s: jnp.zeros(s.shape, jnp.float32), info_shape)

    def thin_body(carry, key):
        states, info_sum = carry
        states, info = step_all(key, states, step_size)
        info_sum = jax.tree.map(lambda a, b: a + b.astype(jnp.float32), info_sum, info)
        return (states, info_sum), None

    num_draws = num_steps // thin
    # Draws go straight into [chains, draws, ...] buffers carried by the scan (updated in place), which
    # saves stacking along axis 0 and transposing afterwards (a full extra pass over the samples).
    keep = jax.vmap(transform)
    kept = jax.eval_shape(keep, states)
    buffers = jax.tree.map(lambda s: jnp.zeros((s.shape[0], num_draws) + s.shape[1:], s.dtype), kept)

    def draw_body(carry, inputs):
        (states, info_sum, buffers), (index, keys) = carry, inputs
        if thin == 1:
            states, info_sum = thin_body((states, info_sum), keys[0])[0]
        else:
            states, info_sum = jax.lax.scan(thin_body, (states, info_sum), keys)[0]
        buffers = jax.tree.map(lambda b, x: jax.lax.dynamic_update_index_in_dim(b, x, index, axis=1),
                               buffers, keep(states))
        return (states, info_sum, buffers), None

    keys = jax.random.split(sample_key, num_steps)
    keys = keys.reshape((num_draws, thin) + keys.shape[1:])  # raw uint32 keys carry a trailing axis
    every = None if progress_every is None else max(1, progress_every // thin)
    (states, info_sum, samples), _ = scan_with_progress(
        draw_body, (states, info_zero, buffers), (jnp.arange(num_draws), keys),
        desc="mcmc sampling", every=every, enabled=progress)
    info_mean = jax.tree.map(lambda a: a / num_steps, info_sum)
    if num_chains is None:
        samples, states, info_mean = jax.tree.map(lambda x: x[0], (samples, states, info_mean))
    return ChainResult(samples, states, info_mean, step_size)
