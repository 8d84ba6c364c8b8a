"""Pieces every kernel shares: `SamplingAlgorithm` and `as_sampler`, noise sources, the Metropolis-Hastings test.

All kernels in `jgen.mcmc` keep one contract (as in blackjax): the target is an argument at call time,

    state = module.init(position, logdensity_fn)
    new_state, info = module.build_kernel(**options)(rng_key, state, logdensity_fn, step_size)

so one compiled kernel serves a target whose parameters change between calls (tempering, an energy-based
model's energy during training: `logdensity_fn = lambda x: -energy(params, x)` inside a jitted step).
`as_sampler(module, logdensity_fn, step_size)` binds everything into `SamplingAlgorithm(init, step)`.
States and infos are NamedTuples (pytrees), so a chain is `jax.lax.scan` over the kernel and many chains
are `jax.vmap` over it; see `jgen.mcmc.chain.sample_chain`.

Proposal noise comes from a pluggable source, `noise="fast"` (default) or `"jax"` (see `noise_source`).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["SamplingAlgorithm", "as_sampler", "threefry2x32", "uniform", "sincos_2pi", "fast_normal_and_uniform",
           "jax_normal_and_uniform", "NOISE_SOURCES", "noise_source", "metropolis_accept", "tree_sq_norm",
           "tree_select", "check_step_size"]

PyTree = Any


class SamplingAlgorithm(NamedTuple):
    """A kernel with its parameters bound.

    init
        `position -> state`: computes what the state caches (log-density, gradient).
    step
        `(rng_key, state) -> (new_state, info)`: one transition.
    """

    init: Callable[[PyTree], Any]
    step: Callable[[jax.Array, Any], tuple[Any, Any]]


def as_sampler(module: Any, logdensity_fn: Callable[[PyTree], jax.Array], step_size: Any,
               **options: Any) -> SamplingAlgorithm:
    """Binds a kernel module's target, step size and options into `SamplingAlgorithm(init, step)`.

    Example:
      >>> alg = as_sampler(jgen.mcmc.mala, logdensity_fn, step_size=0.1)
      >>> state = alg.init(jnp.zeros(2))
      >>> state, info = jax.jit(alg.step)(jax.random.key(0), state)

    Args:
      module: a kernel module with `init(position, logdensity_fn)` and `build_kernel(**options)` returning
        `kernel(rng_key, state, logdensity_fn, step_size)`: `jgen.mcmc.rwmh`, `mala` or `ula`.
      logdensity_fn: unnormalised log-density of the target, `position -> scalar`.
      step_size: the kernel's step size (> 0): RWMH's proposal scale, MALA's and ULA's Langevin time step.
      **options: `module.build_kernel`'s options (e.g. `scale=` for RWMH, `clip_norm=` for ULA,
        `noise="jax"` for any of them).

    Returns:
      `SamplingAlgorithm(init, step)` with `init(position) -> state` and `step(rng_key, state) ->
      (state, info)`.
    """
    for name in ("init", "build_kernel"):
        if not callable(getattr(module, name, None)):
            raise TypeError(f"as_sampler needs a kernel module with init and build_kernel (e.g. jgen.mcmc.mala), "
                            f"got {module!r}")
    check_step_size(step_size)
    kernel = module.build_kernel(**options)

    def init(position):
        return module.init(position, logdensity_fn)

    def step(rng_key, state):
        return kernel(rng_key, state, logdensity_fn, step_size)

    return SamplingAlgorithm(init, step)


def tree_sq_norm(tree: PyTree) -> jax.Array:
    """Sum of squares of all leaves (a scalar)."""
    return sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree))


def tree_select(pred: jax.Array, on_true: PyTree, on_false: PyTree) -> PyTree:
    """`jnp.where(pred, a, b)` leaf by leaf, with a scalar `pred`.

    A select rather than `lax.cond`: under `vmap` a cond becomes a select anyway, and a select never lets a
    NaN in the rejected branch through.
    """
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def _rotate_left(x: jax.Array, r: int) -> jax.Array:
    return (x << jnp.uint32(r)) | (x >> jnp.uint32(32 - r))


def threefry2x32(key: jax.Array, x1: jax.Array, x2: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The Threefry-2x32 block cipher with 20 rounds (Salmon et al. 2011), unrolled.

    The same function as JAX's default PRNG, bit for bit: `jax.random.bits(k, shape)` is
    `b1 ^ b2` of `threefry2x32(key_data(k), 0, iota)`. JAX lowers it on CPU as a rolled loop with
    data-dependent rotations, which is several times slower than these straight-line constant rotations.

    Args:
      key: uint32[2] key words.
      x1, x2: uint32 counter words (any matching shapes).

    Returns:
      The two uint32 output words, shaped like the counters.

    References:
      Salmon, J. K., Moraes, M. A., Dror, R. O. and Shaw, D. E. (2011). Parallel random numbers: as easy as
      1, 2, 3. SC'11.
    """
    k1, k2 = key[0], key[1]
    ks = (k1, k2, k1 ^ k2 ^ jnp.uint32(0x1BD11BDA))
    rotations = ((13, 15, 26, 6), (17, 29, 16, 24))
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in rotations[i % 2]:
            x1 = x1 + x2
            x2 = x1 ^ _rotate_left(x2, r)
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + jnp.uint32(i + 1)
    return x1, x2


def _is_threefry(rng_key: jax.Array) -> bool:
    if not jnp.issubdtype(rng_key.dtype, jax.dtypes.prng_key):  # a raw uint32 key of the default impl
        if rng_key.dtype != jnp.uint32 or rng_key.ndim != 1:
            return False
        try:
            rng_key = jax.random.wrap_key_data(rng_key)
        except (TypeError, ValueError):
            return False
    return str(jax.random.key_impl(rng_key)) == "threefry2x32"


def uniform(rng_key: jax.Array, n: int, dtype=jnp.float32) -> jax.Array:
    """`n` uniforms in [0, 1) from one key: `jax.random.uniform(rng_key, (n,), dtype)`, faster.

    For float32 and Threefry keys (JAX's default), counter-mode Threefry-2x32 keyed by the key's data,
    keeping both output words of every block (JAX keeps their xor, so it runs twice as many blocks), and
    unrolled (see `threefry2x32`). The float conversion is JAX's: 23 random mantissa bits. Other key
    implementations and dtypes fall back to `jax.random.uniform`.
    """
    if dtype != jnp.float32 or not _is_threefry(rng_key):
        return jax.random.uniform(rng_key, (n,), dtype=dtype)
    data = jax.random.key_data(rng_key) if jnp.issubdtype(rng_key.dtype, jax.dtypes.prng_key) else rng_key
    blocks = (n + 1) // 2
    b1, b2 = threefry2x32(data, jnp.zeros((blocks,), jnp.uint32), jnp.arange(blocks, dtype=jnp.uint32))
    bits = jnp.concatenate([b1, b2])[:n]
    mantissa = (bits >> jnp.uint32(9)) | jnp.uint32(0x3F800000)  # a float in [1, 2)
    return jax.lax.bitcast_convert_type(mantissa, jnp.float32) - 1.0


def sincos_2pi(u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`(cos(2 pi u), sin(2 pi u))` for `u` in [0, 1).

    For float32, an exact reduction to `[-pi/4, pi/4]` (`4u - round(4u)` is exact) and Taylor polynomials of
    degree 9 / 8 (truncation error < 3e-8), faster on CPU than XLA's general `sin`/`cos`. Other dtypes use
    `jnp.cos`/`jnp.sin`.
    """
    if u.dtype != jnp.float32:
        angle = (2.0 * jnp.pi) * u
        return jnp.cos(angle), jnp.sin(angle)
    quarter = jnp.round(4.0 * u)
    r = (4.0 * u - quarter) * jnp.float32(jnp.pi / 2)
    r2 = r * r
    s = r * (1.0 + r2 * (-1.0 / 6 + r2 * (1.0 / 120 + r2 * (-1.0 / 5040 + r2 * (1.0 / 362880)))))
    c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24 + r2 * (-1.0 / 720 + r2 * (1.0 / 40320))))
    q = quarter.astype(jnp.int32) & 3  # rotate (c, s) by q quarter turns
    cos = jnp.where(q == 0, c, jnp.where(q == 1, -s, jnp.where(q == 2, -c, s)))
    sin = jnp.where(q == 0, s, jnp.where(q == 1, c, jnp.where(q == 2, -s, -c)))
    return cos, sin


def _float_leaves(like: PyTree):
    leaves, treedef = jax.tree.flatten(like)
    if not leaves:
        raise ValueError("a noise source needs a position with at least one array leaf")
    dtype = jnp.result_type(*leaves)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"positions must be floating point, got dtype {dtype}")
    return leaves, treedef, dtype


def fast_normal_and_uniform(rng_key: jax.Array, like: PyTree) -> tuple[PyTree, jax.Array]:
    """Standard normal noise shaped like `like`, and one uniform in [0, 1), from a single key (`noise="fast"`).

    Random draws dominate the cost of a Metropolis step on a cheap target, so this is built for speed:
    one call to the bit generator serves both draws (no key split; `uniform`), and the normals come from
    the Box-Muller transform, which is exact for exact uniforms and cheaper on CPU than the inverse-erf
    path of `jax.random.normal` (see `sincos_2pi`). With float32 uniforms the normals are truncated at about
    5.8 standard deviations (probability < 1e-8), no worse than `jax.random.normal`'s 5.4.

    Args:
      rng_key: a PRNG key.
      like: pytree of float arrays; the noise has its structure, shapes and dtypes.

    Returns:
      `(noise, u)`: noise with the structure of `like`; `u` a scalar in [0, 1) of the leaves' result dtype.

    References:
      Box, G. E. P. and Muller, M. E. (1958). A note on the generation of random normal deviates.
    """
    leaves, treedef, dtype = _float_leaves(like)
    sizes = [int(jnp.size(x)) for x in leaves]
    n = sum(sizes)
    half = (n + 1) // 2
    u = uniform(rng_key, 2 * half + 1, dtype)
    radius = jnp.sqrt(-2.0 * jnp.log1p(-u[:half]))  # 1 - u is in (0, 1]: the log is finite
    cos, sin = sincos_2pi(u[half:2 * half])
    z = jnp.concatenate([radius * cos, radius * sin])[:n]
    out, start = [], 0
    for x, size in zip(leaves, sizes):
        out.append(z[start:start + size].reshape(jnp.shape(x)).astype(jnp.result_type(x)))
        start += size
    return jax.tree.unflatten(treedef, out), u[2 * half]


def jax_normal_and_uniform(rng_key: jax.Array, like: PyTree) -> tuple[PyTree, jax.Array]:
    """Standard normal noise shaped like `like`, and one uniform in [0, 1), from `jax.random` (`noise="jax"`).

    The reference source: `jax.random.split(rng_key, num_leaves + 1)` gives one key per leaf, leaf `i`'s
    noise is exactly `jax.random.normal(keys[i], leaf.shape, leaf.dtype)` and the uniform is
    `jax.random.uniform(keys[-1], (), dtype)`. Works with every key implementation and dtype; on CPU it is
    slower than `fast_normal_and_uniform` (a key split and JAX's rolled Threefry and inverse-erf normals).

    Args:
      rng_key: a PRNG key.
      like: pytree of float arrays; the noise has its structure, shapes and dtypes.

    Returns:
      `(noise, u)` as `fast_normal_and_uniform`.
    """
    leaves, treedef, dtype = _float_leaves(like)
    keys = jax.random.split(rng_key, len(leaves) + 1)
    noise = [jax.random.normal(k, jnp.shape(x), jnp.result_type(x)) for k, x in zip(keys, leaves)]
    return jax.tree.unflatten(treedef, noise), jax.random.uniform(keys[-1], (), dtype)


#: The noise sources a kernel's `noise=` option names: `(rng_key, like) -> (normal noise like like, uniform)`.
NOISE_SOURCES = {"fast": fast_normal_and_uniform, "jax": jax_normal_and_uniform}


def noise_source(noise: str | Callable) -> Callable[[jax.Array, PyTree], tuple[PyTree, jax.Array]]:
    """The noise function a kernel draws with, from its `noise=` option.

    Args:
      noise: `"fast"` (the default, `fast_normal_and_uniform`: unrolled Threefry and Box-Muller, several
        times cheaper on CPU than `jax.random`, with other numbers), `"jax"` (`jax_normal_and_uniform`:
        plain `jax.random`), or a function `(rng_key, like) -> (noise pytree like like, scalar uniform in
        [0, 1))`.

    Returns:
      The noise function.
    """
    if callable(noise):
        return noise
    if noise not in NOISE_SOURCES:
        raise ValueError(f"noise must be one of {sorted(NOISE_SOURCES)} or a function (rng_key, like) -> "
                         f"(noise, uniform), got {noise!r}")
    return NOISE_SOURCES[noise]


def metropolis_accept(u: jax.Array, log_ratio: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The Metropolis-Hastings test for one proposal.

    NaN log-ratios (a proposal where the target or its gradient is NaN) count as -inf: the proposal is
    rejected and the NaN never reaches the chain.

    Args:
      u: a uniform draw in [0, 1).
      log_ratio: log of the Metropolis-Hastings ratio
        `p(y) q(x | y) / (p(x) q(y | x))`.

    Returns:
      `(is_accepted, acceptance_probability, log_ratio)` with the NaN-cleaned log-ratio.
    """
    log_ratio = jnp.where(jnp.isnan(log_ratio), -jnp.inf, log_ratio)
    # accept iff u' <= ratio with u' = 1 - u in (0, 1]: log(u') is never -inf, so a -inf ratio always rejects.
    is_accepted = jnp.log1p(-u) <= log_ratio
    acceptance = jnp.exp(jnp.minimum(log_ratio, 0.0))
    return is_accepted, acceptance, log_ratio


def check_step_size(step_size: Any, name: str = "step_size") -> None:
    """Raises ValueError for a concrete step size that is not a positive finite number (tracers pass)."""
    try:
        value = float(step_size)
    except jax.errors.ConcretizationTypeError:  # traced: checked by whoever made it concrete
        return
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive scalar, got {step_size!r}") from None
    if not (value > 0 and value < float("inf")):
        raise ValueError(f"{name} must be a positive finite number, got {value}")
