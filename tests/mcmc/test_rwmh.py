"""Random-walk Metropolis-Hastings: exact MH ratio, moments of Gaussian and quartic targets, pytrees."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jgen import mcmc
from jgen.mcmc import base, rwmh
from jgen.mcmc.targets import quartic_logdensity

from .helpers import MU, SIGMA, assert_quartic_chains, assert_within_mcse, gaussian_logdensity, init_batch


@pytest.mark.parametrize("noise", sorted(base.NOISE_SOURCES))
def test_acceptance_is_the_metropolis_ratio(noise):
    """Detailed balance: the kernel accepts with min(1, p(y)/p(x)) for its proposal y = x + h s z."""
    kernel = jax.jit(rwmh.build_kernel(scale=SIGMA, noise=noise), static_argnums=2)
    h, draw = 0.8, jax.jit(base.noise_source(noise))
    for i in range(20):
        key = jax.random.key(i)
        x = jnp.asarray(MU + 2 * SIGMA * np.random.default_rng(i).standard_normal(3), jnp.float32)
        state, info = kernel(key, rwmh.init(x, gaussian_logdensity), gaussian_logdensity, h)
        z, u = draw(key, x)
        y = np.asarray(x + h * SIGMA * z, np.float64)
        target = stats.multivariate_normal(MU, np.diag(SIGMA.astype(np.float64) ** 2))
        ratio = min(1.0, np.exp(target.logpdf(y) - target.logpdf(np.asarray(x, np.float64))))
        np.testing.assert_allclose(float(info.acceptance_rate), ratio, rtol=2e-4, atol=1e-6)
        assert bool(info.is_accepted) == (1.0 - float(u) <= ratio)
        expected = y if bool(info.is_accepted) else np.asarray(x)
        np.testing.assert_allclose(state.position, expected, rtol=1e-6)
        np.testing.assert_allclose(state.logdensity, gaussian_logdensity(state.position), rtol=1e-6)


def test_gaussian_moments():
    positions = jnp.asarray(MU + SIGMA * np.random.default_rng(0).standard_normal((8, 3)), jnp.float32)
    kernel = rwmh.build_kernel(scale=SIGMA)
    out = mcmc.sample_chain(kernel, init_batch(rwmh, gaussian_logdensity, positions), 4000, jax.random.key(1),
                            logdensity_fn=gaussian_logdensity, num_chains=8, warmup=500, step_size=1.0,
                            target_accept=rwmh.TARGET_ACCEPTANCE)
    x = np.asarray(out.samples)
    assert_within_mcse(x, MU, what="mean")
    assert_within_mcse((x - MU) ** 2, SIGMA**2, what="variance")


@pytest.mark.parametrize("dim", [1, 2])
def test_quartic_moments_within_4_mcse(dim):
    positions = 0.5 * jax.random.normal(jax.random.key(dim), (8, dim))
    out = mcmc.sample_chain(rwmh.build_kernel(), init_batch(rwmh, quartic_logdensity, positions), 6000,
                            jax.random.key(2), logdensity_fn=quartic_logdensity, num_chains=8, warmup=500,
                            step_size=1.0, target_accept=rwmh.TARGET_ACCEPTANCE)
    assert_quartic_chains(out.samples, dim)


def test_pytree_positions_and_diagonal_scale():
    def logdensity(p):
        return -0.5 * (jnp.sum(p["a"] ** 2) + jnp.sum((p["b"] / 3.0) ** 2))

    alg = mcmc.as_sampler(rwmh, logdensity, 1.0, scale={"a": jnp.ones(2), "b": 3.0 * jnp.ones(())})
    init = {"a": jnp.zeros((6, 2)), "b": jnp.zeros(6)}
    out = mcmc.sample_chain(alg.step, jax.vmap(alg.init)(init), 3000, jax.random.key(0), num_chains=6)
    assert out.samples["a"].shape == (6, 3000, 2) and out.samples["b"].shape == (6, 3000)
    assert_within_mcse(np.asarray(out.samples["b"]) ** 2, 9.0, what="var b")


def test_bad_arguments():
    with pytest.raises(ValueError, match="scale must be positive"):
        rwmh.build_kernel(scale=-1.0)
