"""ULA: the exact O(h) bias on a Gaussian, gradient clipping bounds each move, bounds clamp positions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen import mcmc
from jgen.mcmc import base, ula


def std_normal(x):
    return -0.5 * jnp.sum(x**2)


def test_gaussian_stationary_variance_has_the_known_bias():
    """x' = (1 - h) x + sqrt(2h) z has stationary variance 1 / (1 - h/2) on N(0, 1)."""
    h = 0.2
    alg = mcmc.as_sampler(ula, std_normal, h)
    out = mcmc.sample_chain(alg.step, jax.vmap(alg.init)(jnp.zeros((64, 1))), 2000, jax.random.key(0),
                            num_chains=64, warmup=100, thin=2)
    var = float(np.var(np.asarray(out.samples)))
    assert var == pytest.approx(1 / (1 - h / 2), rel=0.03)
    assert var > 1.05  # the bias is really there (no accept step)


def test_clipping_bounds_each_move():
    def steep(x):
        return -1e4 * jnp.sum(x**2)

    h, clip = 0.1, 1.0
    kernel = jax.jit(ula.build_kernel(clip_norm=clip), static_argnums=2)
    state, draw = ula.init(jnp.array([3.0, -4.0])), jax.jit(base.fast_normal_and_uniform)
    for i in range(50):
        key = jax.random.key(i)
        new, info = kernel(key, state, steep, h)
        z, _ = draw(key, state.position)
        drift = new.position - state.position - jnp.sqrt(2 * h) * z
        assert float(jnp.linalg.norm(drift)) <= h * clip * (1 + 1e-5)
        assert bool(info.is_clipped) and float(info.grad_norm) > clip
        state = new
    assert float(jnp.max(jnp.abs(state.position))) < 10.0

    unclipped = mcmc.as_sampler(ula, steep, h)
    out = mcmc.sample_chain(unclipped.step, unclipped.init(jnp.array([3.0, -4.0])), 20, jax.random.key(0))
    assert not np.all(np.isfinite(np.asarray(out.samples)) & (np.abs(np.asarray(out.samples)) < 1e6))


def test_clip_value_noise_scale_and_bounds():
    def tilt(x):
        return 100.0 * jnp.sum(x)  # gradient 100 everywhere

    kernel = jax.jit(ula.build_kernel(clip_value=0.5, noise_scale=1e-6, bounds=(-1.0, 1.0)), static_argnums=2)
    state, info = kernel(jax.random.key(0), ula.init(jnp.zeros(3)), tilt, 0.1)
    np.testing.assert_allclose(state.position, 0.05, atol=1e-5)  # h * 0.5, noise negligible
    assert bool(info.is_clipped) and float(info.logdensity) == 0.0
    for _ in range(30):
        state, _ = kernel(jax.random.key(1), state, tilt, 0.1)
    np.testing.assert_allclose(state.position, 1.0)  # clamped at the upper bound


def test_bad_arguments():
    with pytest.raises(ValueError, match="clip_norm"):
        ula.build_kernel(clip_norm=0.0)
    with pytest.raises(ValueError, match="bounds"):
        ula.build_kernel(bounds=(1.0, -1.0))
