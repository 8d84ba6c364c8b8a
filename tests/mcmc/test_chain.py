"""sample_chain: shapes, thinning without storing skipped steps, adaptation, compile-once, bad input."""

import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen import mcmc
from jgen.mcmc import mala, rwmh

from .helpers import gaussian_logdensity, init_batch

DIM = 10


def std_normal(x):
    return -0.5 * jnp.sum(x**2)


@pytest.fixture(scope="module")
def rw():
    return mcmc.as_sampler(rwmh, std_normal, 0.8)


def test_shapes_single_and_many_chains(rw):
    out = mcmc.sample_chain(rw.step, rw.init(jnp.zeros(3)), 30, jax.random.key(0))
    assert out.samples.shape == (30, 3) and out.final_state.position.shape == (3,)
    assert out.info_mean.acceptance_rate.shape == () and out.step_size is None
    states = jax.vmap(rw.init)(jnp.zeros((4, 3)))
    out = mcmc.sample_chain(rw.step, states, 30, jax.random.key(0), num_chains=4, thin=3, warmup=7)
    assert out.samples.shape == (4, 10, 3)
    assert out.info_mean.is_accepted.shape == (4,) and out.final_state.logdensity.shape == (4,)


def test_thinning_keeps_every_kth_state_of_the_same_chain(rw):
    states = jax.vmap(rw.init)(jnp.ones((2, 3)))
    full = mcmc.sample_chain(rw.step, states, 60, jax.random.key(5), num_chains=2, warmup=4)
    thinned = mcmc.sample_chain(rw.step, states, 60, jax.random.key(5), num_chains=2, warmup=4, thin=4)
    np.testing.assert_array_equal(thinned.samples, full.samples[:, 3::4])
    np.testing.assert_array_equal(thinned.final_state.position, full.final_state.position)
    np.testing.assert_allclose(thinned.info_mean.is_accepted, full.info_mean.is_accepted, rtol=1e-6)


def test_thinning_does_not_store_skipped_steps(rw):
    """The compiled program's output and scan buffers hold num_steps / thin draws, never num_steps."""
    states = jax.vmap(rw.init)(jnp.ones((2, 3)))
    fn = jax.jit(lambda k: mcmc.sample_chain(rw.step, states, 4000, k, num_chains=2, thin=100).samples)
    # Threefry, JAX's default: rbg's key splitting materialises one key per step (4000 x 4 words), which is
    # not the buffer this test is about.
    hlo = fn.lower(jax.random.key(0, impl="threefry2x32")).compile().as_text()
    assert "f32[2,40,3]" in hlo and "4000,3]" not in hlo and "[2,4000" not in hlo


def test_info_mean_is_the_accepted_fraction(rw):
    states = jax.vmap(rw.init)(jax.random.normal(jax.random.key(1), (3, 2)))
    out = mcmc.sample_chain(rw.step, states, 500, jax.random.key(2), num_chains=3)
    x = np.asarray(out.samples)
    moved = np.any(x[:, 1:] != x[:, :-1], axis=-1).sum(1)
    moved_first = np.any(x[:, 0] != np.asarray(states.position), axis=-1)
    np.testing.assert_allclose(out.info_mean.is_accepted, (moved + moved_first) / 500, atol=1e-6)
    assert np.all(out.info_mean.acceptance_rate > 0) and np.all(out.info_mean.acceptance_rate < 1)


@pytest.mark.parametrize("module,initial", [(rwmh, 3.0), (mala, 1e-3)])
def test_adaptation_reaches_target_acceptance(module, initial):
    positions = jax.random.normal(jax.random.key(0), (16, DIM))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = mcmc.sample_chain(module.build_kernel(), init_batch(module, std_normal, positions), 2000,
                                jax.random.key(1), logdensity_fn=std_normal, num_chains=16, warmup=1000,
                                step_size=initial, target_accept=module.TARGET_ACCEPTANCE)
    assert not [w for w in caught if "shrank the step size" in str(w.message)]
    accept = float(out.info_mean.acceptance_rate.mean())
    assert abs(accept - module.TARGET_ACCEPTANCE) < 0.05, (accept, float(out.step_size))
    assert abs(float(out.info_mean.is_accepted.mean()) - module.TARGET_ACCEPTANCE) < 0.05
    assert float(out.step_size) != initial  # and the step size is frozen: one value is returned


def test_fixed_step_size_kernel_without_adaptation():
    positions = jnp.zeros((4, 3))
    kernel = rwmh.build_kernel()
    small = mcmc.sample_chain(kernel, init_batch(rwmh, gaussian_logdensity, positions), 200, jax.random.key(0),
                              logdensity_fn=gaussian_logdensity, num_chains=4, step_size=0.01)
    big = mcmc.sample_chain(kernel, init_batch(rwmh, gaussian_logdensity, positions), 200, jax.random.key(0),
                            logdensity_fn=gaussian_logdensity, num_chains=4, step_size=5.0)
    assert float(small.step_size) == pytest.approx(0.01)
    assert small.info_mean.acceptance_rate.mean() > big.info_mean.acceptance_rate.mean()


def test_compiles_once_per_kernel():
    traces = []

    def logdensity(x):
        traces.append(1)
        return std_normal(x)

    kernel = mala.build_kernel()
    positions = jnp.zeros((4, 3))
    states = jax.vmap(lambda x: mala.init(x, std_normal))(positions)
    mcmc.sample_chain(kernel, states, 50, jax.random.key(0), logdensity_fn=logdensity, num_chains=4, warmup=10,
                      step_size=0.1, target_accept=0.574, thin=5)
    first = len(traces)
    assert first >= 1
    for i in range(3):  # new keys, new initial values, new step sizes: no retracing
        states = jax.vmap(lambda x: mala.init(x, std_normal))(positions + i)
        mcmc.sample_chain(kernel, states, 50, jax.random.key(i + 1), logdensity_fn=logdensity, num_chains=4,
                          warmup=10, step_size=0.1 * (i + 1), target_accept=0.574, thin=5)
    assert len(traces) == first


def test_energy_with_new_parameters_in_a_jitted_training_step_compiles_once():
    """The EBM pattern: `logdensity_fn = lambda x: -energy(params, x)` inside a jitted step whose `params`
    change every call; persistent short-run ULA chains (clipped gradient, own noise scale, data range)."""
    kernel = mcmc.ula.build_kernel(clip_norm=50.0, noise_scale=0.05, bounds=(-1.0, 1.0))

    def energy(params, x):
        return 0.5 * jnp.sum((x - params) ** 2) / 0.1**2

    @jax.jit
    @chex.assert_max_traces(n=1)
    def negatives(params, positions, key):
        logdensity_fn = lambda x: -energy(params, x)  # noqa: E731
        out = mcmc.sample_chain(kernel, jax.vmap(mcmc.ula.init)(positions), 10, key, logdensity_fn=logdensity_fn,
                                num_chains=8, step_size=2e-3, progress=False)
        return out.final_state.position

    positions = jnp.zeros((8, 2))
    for i in range(100):
        params = jnp.array([0.5, -2.0]) * (i + 1) / 100  # the second coordinate leaves the data range
        positions = negatives(params, positions, jax.random.key(i))
    mean = np.asarray(positions).mean(0)
    assert abs(mean[0] - 0.5) < 0.1 and np.all(np.asarray(positions)[:, 1] == -1.0)


def test_warmup_whose_step_size_collapses_warns_with_the_numbers():
    def needle(x):  # a target 1e6 times narrower than the initial step size
        return -0.5 * jnp.sum((x / 1e-6) ** 2)

    states = init_batch(rwmh, needle, jnp.zeros((4, 2)))
    with pytest.warns(RuntimeWarning, match=r"shrank the step size from 1 to \d.*e-0\d .* times smaller"):
        out = mcmc.sample_chain(rwmh.build_kernel(), states, 20, jax.random.key(0), logdensity_fn=needle,
                                num_chains=4, warmup=300, step_size=1.0, target_accept=rwmh.TARGET_ACCEPTANCE,
                                progress=False)
    assert float(out.step_size) < 1e-4


def test_raw_uint32_keys(rw):
    out = mcmc.sample_chain(rw.step, jax.vmap(rw.init)(jnp.zeros((2, 2))), 8, jax.random.PRNGKey(0), num_chains=2,
                            thin=2)
    assert out.samples.shape == (2, 4, 2)


def test_bad_arguments(rw):
    states = jax.vmap(rw.init)(jnp.zeros((4, 3)))
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="multiple of thin"):
        mcmc.sample_chain(rw.step, states, 10, key, num_chains=4, thin=3)
    with pytest.raises(ValueError, match="leading axis 5"):
        mcmc.sample_chain(rw.step, states, 10, key, num_chains=5)
    with pytest.raises(ValueError, match="num_steps"):
        mcmc.sample_chain(rw.step, states, 0, key, num_chains=4)
    with pytest.raises(ValueError, match="needs step_size"):
        mcmc.sample_chain(rw.step, states, 10, key, num_chains=4, warmup=5, target_accept=0.3)
    with pytest.raises(ValueError, match="warmup > 0"):
        mcmc.sample_chain(rwmh.build_kernel(), states, 10, key, logdensity_fn=std_normal, num_chains=4,
                          step_size=0.1, target_accept=0.3)
    with pytest.raises(ValueError, match="target_accept must be in"):
        mcmc.sample_chain(rwmh.build_kernel(), states, 10, key, logdensity_fn=std_normal, num_chains=4,
                          step_size=0.1, warmup=2, target_accept=1.5)
    with pytest.raises(ValueError, match="acceptance_rate field"):
        mcmc.sample_chain(mcmc.ula.build_kernel(), jax.vmap(mcmc.ula.init)(jnp.zeros((4, 3))), 10, key,
                          logdensity_fn=std_normal, num_chains=4, step_size=0.1, warmup=2, target_accept=0.5)
    with pytest.raises(TypeError, match="logdensity_fn must be a function"):
        mcmc.sample_chain(rwmh.build_kernel(), states, 10, key, logdensity_fn=1.0, num_chains=4, step_size=0.1)
