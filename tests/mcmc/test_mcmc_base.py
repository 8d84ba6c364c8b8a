"""Noise sources, the Metropolis test and as_sampler, shared by the kernels (jgen.mcmc.base)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jgen.mcmc import base, mala, rwmh


@pytest.mark.parametrize("key,counter,expected", [
    # Known-answer tests of Threefry-2x32-20 from the Random123 distribution (kat_vectors).
    ((0x0, 0x0), (0x0, 0x0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
])
def test_threefry_known_answers(key, counter, expected):
    out = base.threefry2x32(jnp.array(key, jnp.uint32), jnp.uint32(counter[0]), jnp.uint32(counter[1]))
    assert tuple(int(o) for o in out) == expected


def test_threefry_matches_jax_bits_and_split():
    key = jax.random.key(1234, impl="threefry2x32")
    data = jax.random.key_data(key)
    b1, b2 = base.threefry2x32(data, jnp.zeros(16, jnp.uint32), jnp.arange(16, dtype=jnp.uint32))
    np.testing.assert_array_equal(b1 ^ b2, jax.random.bits(key, (16,)))
    np.testing.assert_array_equal(np.stack([b1, b2], 1), jax.random.key_data(jax.random.split(key, 16)))


def test_uniform_is_uniform_and_key_dependent():
    keys = jax.random.split(jax.random.key(0, impl="threefry2x32"), 2000)
    u = np.asarray(jax.jit(jax.vmap(lambda k: base.uniform(k, 7)))(keys))
    assert u.min() >= 0.0 and u.max() < 1.0
    assert stats.kstest(u.ravel(), "uniform").pvalue > 1e-3
    # Words of one draw and of different keys are uncorrelated.
    corr = np.corrcoef(u.T)
    assert np.abs(corr - np.eye(7)).max() < 0.1
    # The raw-key form (raw keys are of the default implementation) gives the same numbers as the typed key.
    jax.config.update("jax_default_prng_impl", "threefry2x32")
    try:
        raw = jax.random.key_data(keys[3])
        np.testing.assert_array_equal(base.uniform(raw, 7), u[3])
    finally:
        jax.config.update("jax_default_prng_impl", os.environ.get("JAX_DEFAULT_PRNG_IMPL", "threefry2x32"))


def test_uniform_falls_back_for_other_key_types():
    key = jax.random.key(0, impl="rbg")
    np.testing.assert_array_equal(base.uniform(key, 5), jax.random.uniform(key, (5,)))
    key = jax.random.key(0)
    np.testing.assert_array_equal(base.uniform(key, 5, jnp.float16), jax.random.uniform(key, (5,), jnp.float16))


def test_sincos_2pi_accuracy():
    u = np.linspace(0, 1, 200_001, endpoint=False, dtype=np.float32)
    c, s = base.sincos_2pi(jnp.asarray(u))
    angle = 2 * np.pi * u.astype(np.float64)
    assert np.abs(np.asarray(c) - np.cos(angle)).max() < 2e-7
    assert np.abs(np.asarray(s) - np.sin(angle)).max() < 2e-7


@pytest.mark.parametrize("noise", sorted(base.NOISE_SOURCES))
def test_noise_sources_give_standard_normals_and_uniforms(noise):
    draw = base.noise_source(noise)
    like = {"a": jnp.zeros((2, 3)), "b": jnp.zeros(4)}
    keys = jax.random.split(jax.random.key(7), 4000)
    z, u = jax.jit(jax.vmap(lambda k: draw(k, like)))(keys)
    assert z["a"].shape == (4000, 2, 3) and z["b"].shape == (4000, 4) and u.shape == (4000,)
    assert z["a"].dtype == jnp.float32 and u.dtype == jnp.float32
    z = np.concatenate([np.asarray(z["a"]).reshape(4000, -1), np.asarray(z["b"])], 1)
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-3
    np.testing.assert_allclose(np.cov(z.T), np.eye(10), atol=0.07)  # unit variances, uncorrelated leaves
    np.testing.assert_allclose(z.mean(0), 0.0, atol=0.07)
    u = np.asarray(u)
    assert u.min() >= 0.0 and u.max() < 1.0 and stats.kstest(u, "uniform").pvalue > 1e-3
    assert abs(np.corrcoef(u, z[:, 0])[0, 1]) < 0.07  # the uniform is independent of the noise
    with pytest.raises(TypeError, match="floating point"):
        draw(keys[0], jnp.zeros(3, jnp.int32))


def test_jax_noise_is_jax_random_exactly():
    key = jax.random.key(3)
    like = {"a": jnp.zeros((2, 3)), "b": jnp.zeros(4, jnp.float16)}
    z, u = base.jax_normal_and_uniform(key, like)
    ka, kb, ku = jax.random.split(key, 3)  # one key per leaf in tree order, the last for the uniform
    np.testing.assert_array_equal(z["a"], jax.random.normal(ka, (2, 3)))
    np.testing.assert_array_equal(z["b"], jax.random.normal(kb, (4,), jnp.float16))
    np.testing.assert_array_equal(u, jax.random.uniform(ku, (), jnp.float32))


def test_noise_source_names_the_choices():
    assert base.noise_source("fast") is base.fast_normal_and_uniform
    assert base.noise_source(base.jax_normal_and_uniform) is base.jax_normal_and_uniform
    with pytest.raises(ValueError, match=r"noise must be one of \['fast', 'jax'\]"):
        base.noise_source("numpy")


def test_metropolis_accept_rejects_nan_and_minus_inf():
    for bad in (jnp.nan, -jnp.inf):
        accepted, prob, log_ratio = base.metropolis_accept(jnp.float32(0.0), jnp.float32(bad))
        assert not bool(accepted) and float(prob) == 0.0 and float(log_ratio) == -np.inf
    accepted, prob, _ = base.metropolis_accept(jnp.float32(0.999), jnp.float32(0.5))
    assert bool(accepted) and float(prob) == 1.0
    # P(accept) = exp(log_ratio) for log_ratio < 0.
    u = jax.random.uniform(jax.random.key(0), (100_000,))
    accepted, prob, _ = jax.jit(jax.vmap(base.metropolis_accept, (0, None)))(u, jnp.log(0.3))
    assert abs(float(accepted.mean()) - 0.3) < 0.006
    np.testing.assert_allclose(prob, 0.3, rtol=1e-6)


def test_check_step_size():
    for bad in (0.0, -1.0, float("nan"), float("inf"), "a"):
        with pytest.raises(ValueError, match="step_size"):
            base.check_step_size(bad)
    base.check_step_size(0.1)
    jax.jit(lambda h: base.check_step_size(h) or h)(0.1)  # tracers pass


def test_as_sampler_binds_the_kernel():
    def logdensity(x):
        return -0.5 * jnp.sum(x**2)

    alg = base.as_sampler(rwmh, logdensity, 0.7, scale=2.0, noise="jax")
    state = alg.init(jnp.ones(3))
    np.testing.assert_allclose(state.logdensity, -1.5)
    key = jax.random.key(4)
    bound = alg.step(key, state)
    direct = rwmh.build_kernel(scale=2.0, noise="jax")(key, rwmh.init(jnp.ones(3), logdensity), logdensity, 0.7)
    for a, b in zip(jax.tree.leaves(bound), jax.tree.leaves(direct)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="step_size"):
        base.as_sampler(mala, logdensity, 0.0)
    with pytest.raises(TypeError, match="kernel module"):
        base.as_sampler(logdensity, logdensity, 0.1)
