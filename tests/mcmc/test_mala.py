"""MALA: exact MH ratio against scipy densities, moments, NaN proposals rejected, cached gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jgen import mcmc
from jgen.mcmc import base, mala
from jgen.mcmc.targets import quartic_logdensity

from .helpers import MU, SIGMA, assert_quartic_chains, assert_within_mcse, gaussian_logdensity, init_batch


@pytest.mark.parametrize("noise", sorted(base.NOISE_SOURCES))
def test_acceptance_is_the_metropolis_hastings_ratio(noise):
    """Detailed balance: acceptance = min(1, p(y) q(x|y) / (p(x) q(y|x))), q(.|x) = N(x + h grad, 2h I)."""
    kernel = jax.jit(mala.build_kernel(noise=noise), static_argnums=2)
    grad, draw = jax.jit(jax.grad(quartic_logdensity)), jax.jit(base.noise_source(noise))
    h = 0.15
    for i in range(20):
        key = jax.random.key(i)
        x = jnp.asarray(0.6 * np.random.default_rng(i).standard_normal(3), jnp.float32)
        state, info = kernel(key, mala.init(x, quartic_logdensity), quartic_logdensity, h)
        z, u = draw(key, x)
        y = x + h * grad(x) + jnp.sqrt(2 * h) * z
        x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)

        def log_q(to, frm):
            mean = frm + h * np.asarray(grad(jnp.asarray(frm, jnp.float32)), np.float64)
            return stats.multivariate_normal(mean, 2 * h * np.eye(3)).logpdf(to)

        log_ratio = (float(quartic_logdensity(y64)) - float(quartic_logdensity(x64))
                     + log_q(x64, y64) - log_q(y64, x64))
        np.testing.assert_allclose(float(info.acceptance_rate), min(1.0, np.exp(log_ratio)), rtol=1e-3,
                                   atol=1e-6)
        expected = y if bool(info.is_accepted) else x
        np.testing.assert_allclose(state.position, expected, rtol=1e-6, atol=1e-7)  # y in float32
        # The cache holds the value and gradient of the current position.
        np.testing.assert_allclose(state.logdensity, quartic_logdensity(state.position), rtol=1e-6)
        np.testing.assert_allclose(state.logdensity_grad, grad(state.position), rtol=1e-5)


def test_gaussian_moments():
    positions = jnp.asarray(MU + SIGMA * np.random.default_rng(0).standard_normal((8, 3)), jnp.float32)
    out = mcmc.sample_chain(mala.build_kernel(), init_batch(mala, gaussian_logdensity, positions), 4000,
                            jax.random.key(1), logdensity_fn=gaussian_logdensity, num_chains=8, warmup=500,
                            step_size=0.1, target_accept=mala.TARGET_ACCEPTANCE)
    x = np.asarray(out.samples)
    assert_within_mcse(x, MU, what="mean")
    assert_within_mcse((x - MU) ** 2, SIGMA**2, what="variance")


@pytest.mark.parametrize("dim", [1, 2])
def test_quartic_moments_within_4_mcse(dim):
    positions = 0.5 * jax.random.normal(jax.random.key(dim), (8, dim))
    out = mcmc.sample_chain(mala.build_kernel(), init_batch(mala, quartic_logdensity, positions), 4000,
                            jax.random.key(2), logdensity_fn=quartic_logdensity, num_chains=8, warmup=500,
                            step_size=0.1, target_accept=mala.TARGET_ACCEPTANCE)
    assert_quartic_chains(out.samples, dim)


def test_nan_proposals_are_rejected_never_propagated():
    """Target N(0, 1) truncated to x < 1, written so that log p and its gradient are NaN beyond 1."""

    def logdensity(x):
        return -0.5 * jnp.sum(x**2) + 0.0 * jnp.sum(jnp.sqrt(1.0 - x))

    positions = jnp.full((8, 1), -0.5)
    out = mcmc.sample_chain(mala.build_kernel(), init_batch(mala, logdensity, positions), 4000,
                            jax.random.key(0), logdensity_fn=logdensity, num_chains=8, step_size=0.5,
                            transform=lambda s: (s.position, s.logdensity, s.logdensity_grad))
    x, logp, grad = (np.asarray(a) for a in out.samples)
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(logp)) and np.all(np.isfinite(grad))
    assert x.max() < 1.0
    assert 0.0 < float(out.info_mean.acceptance_rate.mean()) < 0.9  # many NaN proposals were refused
    truncated_mean = stats.truncnorm(-np.inf, 1.0).mean()
    assert_within_mcse(x, truncated_mean, what="truncated-normal mean")


def test_plus_infinity_is_rejected():
    def spiked(x):
        return jnp.where(x[0] > 0.5, jnp.inf, -0.5 * jnp.sum(x**2))

    state = mala.init(jnp.zeros(1), lambda x: -0.5 * jnp.sum(x**2))
    step = jax.jit(jax.vmap(lambda k: mala.build_kernel()(k, state, spiked, 1.0)))
    states, infos = step(jax.random.split(jax.random.key(0), 500))
    proposed_far = np.asarray(infos.acceptance_rate) == 0.0
    assert proposed_far.any() and np.all(np.asarray(states.position) <= 0.5)


def test_step_jits_once():
    import chex

    alg = mcmc.as_sampler(mala, quartic_logdensity, 0.1)
    step = jax.jit(chex.assert_max_traces(alg.step, n=1))
    state = alg.init(jnp.zeros(2))
    for i in range(3):
        state, _ = step(jax.random.key(i), state)
