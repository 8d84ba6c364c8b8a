"""Contrastive divergence with persistent chains: the training step of an EBM, with a replay buffer.

Maximum likelihood for p(x) = exp(-E(x)) / Z has the gradient `E_data[grad E] - E_model[grad E]`; the model
expectation is estimated with short-run Langevin chains started from a replay buffer of earlier chain ends
(persistent chains, Tieleman 2008; Du & Mordatch 2019), a fraction of them restarted from uniform noise
every iteration so the buffer keeps exploring. The buffer lives in `TrainState.extra`, so it is checkpointed
with the parameters and a resumed run continues the same chains bit for bit.

    state = cd.create_state(params, tx, key, cd.init_buffer(k, 8192, (16, 16, 1)))
    step = cd.make_step(model.apply, tx, langevin_config=LangevinConfig(...), alpha=0.1)
    result = jgen.ebm.divergence.fit(step, state, batches, num_steps, energy_bound=..., wd=wd)
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import optax

from jgen import train
from jgen.ebm.sampling import EnergyFn, LangevinConfig, langevin

__all__ = ["cd_loss", "init_buffer", "create_state", "make_step", "ENERGY_MAGNITUDE"]

#: The metric a step sets to +inf when the energies leave `energy_bound` (so that `train.fit` stops there).
ENERGY_MAGNITUDE = "energy_magnitude"


def cd_loss(e_real: jax.Array, e_fake: jax.Array, alpha: float) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The contrastive-divergence loss with an energy-magnitude penalty.

        L = mean E(x_real) - mean E(x_sampled) + alpha (mean E(x_real)^2 + mean E(x_sampled)^2)

    Its gradient in theta is the maximum-likelihood gradient when the samples come from exp(-E) (they are
    held fixed: no gradient flows through the sampler). The squared term keeps the energies near 0: without
    it only differences of E are pinned down and both drift off together.

    Args:
      e_real: `[n]` energies of data. e_fake: `[m]` energies of samples. alpha: penalty weight (>= 0).

    Returns:
      `(loss, aux)` with aux `cd` (the first two terms), `reg`, `e_real`, `e_fake` (means).
    """
    cd = jnp.mean(e_real) - jnp.mean(e_fake)
    reg = alpha * (jnp.mean(e_real ** 2) + jnp.mean(e_fake ** 2))
    return cd + reg, {"cd": cd, "reg": reg, "e_real": jnp.mean(e_real), "e_fake": jnp.mean(e_fake)}


def init_buffer(rng: jax.Array, size: int, shape: tuple[int, ...], bounds: tuple[float, float] = (-1.0, 1.0)
                ) -> jax.Array:
    """A replay buffer of `size` uniform-noise examples `[size, *shape]` in `bounds`."""
    return jax.random.uniform(rng, (size, *shape), jnp.float32, bounds[0], bounds[1])


def create_state(params: Any, tx: optax.GradientTransformation, rng: jax.Array, buffer: jax.Array
                 ) -> train.TrainState:
    """A train state whose `extra` is `{"buffer": buffer}`."""
    return train.create_train_state(params, tx, rng, extra={"buffer": buffer})


def make_step(energy_fn: EnergyFn, tx: optax.GradientTransformation, *, langevin_config: LangevinConfig,
              alpha: float = 0.1, reinit_fraction: float = 0.05, real_noise: float = 0.0,
              init_bounds: tuple[float, float] = (-1.0, 1.0), energy_bound: float = float("inf")):
    """One CD iteration as an unjitted `step(state, batch) -> (state, metrics)` for `jgen.train.fit`.

    1. Pick `n = len(batch)` distinct buffer entries; each is replaced by uniform noise in `init_bounds`
       with probability `reinit_fraction`.
    2. Run `langevin_config.num_steps` Langevin steps from them under the current (frozen) parameters.
    3. One optimizer step on `cd_loss(E(real), E(samples))`, the real examples jittered by Gaussian noise
       of std `real_noise` (and clamped to the sampler's bounds), which keeps E smooth around the data.
    4. Write the samples back into the buffer at the same entries.

    Args:
      energy_fn: `energy_fn(params, x [batch, ...]) -> [batch]`.
      tx: the optimizer (`jgen.optim.make_optimizer`; Adam with b1 = 0 is the usual EBM choice).
      langevin_config: the sampler.
      alpha: weight of the energy-magnitude penalty.
      reinit_fraction: probability that a picked buffer entry restarts from noise.
      real_noise: std of the Gaussian jitter added to real examples.
      init_bounds: range of the restart noise.
      energy_bound: divergence threshold: when `max(|mean E(real)|, |mean E(samples)|, |their gap|)` exceeds
        it (or is NaN), the step's `energy_magnitude` metric is +inf, which stops `jgen.train.fit` at that
        step (see `jgen.ebm.divergence.fit`).

    Returns:
      The step; its metrics: `loss`, `cd`, `reg`, `e_real`, `e_fake`, `energy_magnitude`, `grad_norm`,
      `langevin_grad_norm`, `langevin_clipped` (fraction of clipped chain-steps).
    """
    if not 0.0 <= reinit_fraction <= 1.0:
        raise ValueError(f"reinit_fraction={reinit_fraction!r} must be a probability in [0, 1]")
    bounds = langevin_config.bounds

    def step(state: train.TrainState, batch: Mapping[str, jax.Array] | jax.Array):
        real = batch["x"] if isinstance(batch, Mapping) else batch
        buffer = state.extra["buffer"]
        n = real.shape[0]
        key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
        k_pick, k_restart, k_noise, k_chain, k_real = jax.random.split(key, 5)
        idx = jax.random.choice(k_pick, buffer.shape[0], (n,), replace=False)
        restart = jax.random.uniform(k_restart, (n,)) < reinit_fraction
        noise = jax.random.uniform(k_noise, (n, *buffer.shape[1:]), buffer.dtype, init_bounds[0], init_bounds[1])
        x0 = jnp.where(restart.reshape((n,) + (1,) * (buffer.ndim - 1)), noise, buffer[idx])
        fake, info = langevin(energy_fn, jax.lax.stop_gradient(state.params), x0, k_chain, langevin_config)
        if real_noise > 0:
            real = real + real_noise * jax.random.normal(k_real, real.shape, real.dtype)
            if bounds is not None:
                real = jnp.clip(real, bounds[0], bounds[1])

        def loss_fn(params):
            energies = energy_fn(params, jnp.concatenate([real, fake]))
            return cd_loss(energies[:n], energies[n:], alpha)

        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        magnitude = jnp.max(jnp.abs(jnp.stack([aux["e_real"], aux["e_fake"], aux["cd"]])))
        ok = jnp.isfinite(loss) & (magnitude <= energy_bound)
        metrics = {"loss": loss, **aux, ENERGY_MAGNITUDE: jnp.where(ok, magnitude, jnp.inf),
                   "grad_norm": optax.tree.norm(grads), "langevin_grad_norm": jnp.mean(info.grad_norm),
                   "langevin_clipped": jnp.mean(info.clipped_fraction)}
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                                  extra={**state.extra, "buffer": buffer.at[idx].set(fake)})
        return new_state, metrics

    return step
