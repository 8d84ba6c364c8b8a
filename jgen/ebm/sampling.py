"""Sampling from p(x) ~ exp(-E_theta(x)): short-run Langevin chains (ULA) and a Metropolis-adjusted check (MALA).

Both run `jgen.mcmc` kernels as a `lax.scan` over steps with a `vmap` over chains, and take the energy's
parameters as a traced argument: the same compiled sampler serves every training step, whatever the
parameters are (`energy_fn` and the `LangevinConfig` are static, the parameters, positions and key are not).

    cfg = LangevinConfig(num_steps=60, step_size=10.0, noise_scale=0.005, clip_value=0.03, bounds=(-1.0, 1.0))
    x, info = langevin(model.apply, params, x0, key, cfg)        # x0 [chains, 16, 16, 1]
    x, info = mala(model.apply, params, x, key, num_steps=100, step_size=1e-3)
    info.acceptance_rate                                          # [chains]: how far ULA is from exp(-E)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jgen.mcmc import mala as mala_kernel
from jgen.mcmc import ula

__all__ = ["EnergyFn", "LangevinConfig", "LangevinInfo", "MALAInfo", "langevin", "langevin_path", "mala"]

#: `energy_fn(params, x) -> energies`: x `[batch, ...]`, energies `[batch]` (e.g. a Flax module's `apply`).
EnergyFn = Callable[[Any, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class LangevinConfig:
    """The unadjusted Langevin sampler of an EBM (hashable: a static argument of the compiled sampler).

        x' = clamp(x - h clip(grad E(x)) + s z),      z ~ N(0, I)

    With `noise_scale=None`, `s = sqrt(2 h)` and the chain targets exp(-E) up to an O(h) bias. Short-run EBM
    samplers (Du & Mordatch 2019, Nijkamp et al. 2019) decouple the two, with a large `h`, a clipped gradient
    and little noise: the chain then samples a much colder exp(-E / T), T = s^2 / (2 h), and is a learned
    sampler rather than an MCMC method for exp(-E); `mala` measures the gap.

    Attributes:
      num_steps: Langevin steps per call (per training iteration).
      step_size: h (pixels per unit of energy gradient).
      noise_scale: s, the standard deviation of the injected noise per step; None for sqrt(2 h).
      clip_value: clip each gradient coordinate to [-clip_value, clip_value] (None: no clipping), so one step
        moves a pixel by at most `h * clip_value`.
      clip_norm: rescale each chain's gradient to at most this Euclidean norm (None: no clipping).
      bounds: `(low, high)` to clamp positions to after each step (the data range), or None.
      noise: the noise source of `jgen.mcmc` ("fast" or "jax").
    """

    num_steps: int = 60
    step_size: float = 10.0
    noise_scale: float | None = 0.005
    clip_value: float | None = 0.03
    clip_norm: float | None = None
    bounds: tuple[float, float] | None = (-1.0, 1.0)
    noise: str = "fast"

    def __post_init__(self):
        if isinstance(self.num_steps, bool) or not isinstance(self.num_steps, int) or self.num_steps < 1:
            raise ValueError(f"LangevinConfig.num_steps={self.num_steps!r} must be a whole number >= 1")
        if not self.step_size > 0:
            raise ValueError(f"LangevinConfig.step_size={self.step_size!r} must be positive")
        if self.bounds is not None:
            object.__setattr__(self, "bounds", (float(self.bounds[0]), float(self.bounds[1])))

    @classmethod
    def from_config(cls, block: Any) -> "LangevinConfig":
        """From a config block (a ConfigDict or dict with these fields); a missing field keeps its default."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in dict(block).items() if k in fields}
        if values.get("bounds") is not None:
            values["bounds"] = tuple(values["bounds"])
        return cls(**values)

    def kernel(self) -> Callable:
        """The `jgen.mcmc.ula` kernel with these options."""
        return ula.build_kernel(clip_norm=self.clip_norm, clip_value=self.clip_value, noise_scale=self.noise_scale,
                                bounds=self.bounds, noise=self.noise)


class LangevinInfo(NamedTuple):
    """What a Langevin call did, one value per step (means over chains).

    energy
        `[num_steps]` mean energy at the start of each step (free: computed with the gradient).
    grad_norm
        `[num_steps]` mean Euclidean norm of the energy gradient before clipping.
    clipped_fraction
        `[num_steps]` fraction of chains whose gradient the clipping changed.
    """

    energy: jax.Array
    grad_norm: jax.Array
    clipped_fraction: jax.Array


def _one(energy_fn: EnergyFn, params: Any) -> Callable[[jax.Array], jax.Array]:
    """The log-density `x -> -E(x)` of one unbatched example."""
    return lambda x: -energy_fn(params, x[None])[0]


@functools.partial(jax.jit, static_argnames=("energy_fn", "config"))
def langevin(energy_fn: EnergyFn, params: Any, x0: jax.Array, rng: jax.Array,
             config: LangevinConfig) -> tuple[jax.Array, LangevinInfo]:
    """Runs `config.num_steps` unadjusted Langevin steps on every chain of `x0` (see `LangevinConfig`).

    Args:
      energy_fn: `energy_fn(params, x [batch, ...]) -> [batch]`; static (hashable, e.g. `module.apply`).
      params: the energy's parameters (traced: new values reuse the compiled sampler).
      x0: `[chains, ...]` initial positions.
      rng: PRNG key.
      config: the sampler's settings (static).

    Returns:
      `(x [chains, ...], LangevinInfo)`.
    """
    kernel = config.kernel()
    logdensity = _one(energy_fn, params)

    def body(x, key):
        keys = jax.random.split(key, x.shape[0])
        state, info = jax.vmap(lambda k, s: kernel(k, s, logdensity, config.step_size))(keys, ula.ULAState(x))
        return state.position, (-jnp.mean(info.logdensity), jnp.mean(info.grad_norm),
                                jnp.mean(info.is_clipped.astype(jnp.float32)))

    x, (energy, grad_norm, clipped) = jax.lax.scan(body, x0, jax.random.split(rng, config.num_steps))
    return x, LangevinInfo(energy, grad_norm, clipped)


@functools.partial(jax.jit, static_argnames=("energy_fn", "config", "num_records"))
def langevin_path(energy_fn: EnergyFn, params: Any, x0: jax.Array, rng: jax.Array, config: LangevinConfig,
                  num_records: int) -> jax.Array:
    """`num_records` consecutive `langevin` calls, keeping the positions after each: `[num_records, chains, ...]`.

    For image strips of a few chains: record `r` is the state after `(r + 1) * config.num_steps` steps.
    """
    def body(x, key):
        x, _ = langevin(energy_fn, params, x, key, config)
        return x, x

    return jax.lax.scan(body, x0, jax.random.split(rng, num_records))[1]


class MALAInfo(NamedTuple):
    """Per-chain summary of a MALA run.

    acceptance_rate
        `[chains]` mean Metropolis-Hastings acceptance probability over the steps.
    energy
        `[num_steps]` mean energy over chains after each step.
    """

    acceptance_rate: jax.Array
    energy: jax.Array


@functools.partial(jax.jit, static_argnames=("energy_fn", "num_steps"))
def mala(energy_fn: EnergyFn, params: Any, x0: jax.Array, rng: jax.Array, *, num_steps: int,
         step_size: float) -> tuple[jax.Array, MALAInfo]:
    """Metropolis-adjusted Langevin chains on exp(-E) itself (no clipping, no clamping, noise sqrt(2 h)).

    Started from short-run samples, the acceptance rate says how far one Langevin step of size `step_size` is
    from exact for the model's own density, and the drift of the energy says whether those samples are
    typical of exp(-E) (a rising energy: they sit in modes that exp(-E) does not weight as much).

    Args:
      energy_fn, params, x0, rng: as for `langevin`.
      num_steps: MALA transitions per chain (static).
      step_size: Langevin time step h (traced).

    Returns:
      `(x [chains, ...], MALAInfo)`.
    """
    kernel = mala_kernel.build_kernel()
    logdensity = _one(energy_fn, params)
    states = jax.vmap(lambda x: mala_kernel.init(x, logdensity))(x0)

    def body(states, key):
        keys = jax.random.split(key, x0.shape[0])
        states, info = jax.vmap(lambda k, s: kernel(k, s, logdensity, step_size))(keys, states)
        return states, (info.acceptance_rate, -jnp.mean(states.logdensity))

    states, (accept, energy) = jax.lax.scan(body, states, jax.random.split(rng, num_steps))
    return states.position, MALAInfo(jnp.mean(accept, axis=0), energy)
