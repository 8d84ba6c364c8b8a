"""SGLD: the gradient estimator is unbiased, and the chain recovers a conjugate Gaussian posterior."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen import mcmc
from jgen.mcmc import base, sgld

N_DATA, PRIOR_SD, NOISE_SD = 400, 10.0, 1.0


def logprior(theta):
    return -0.5 * jnp.sum(theta**2) / PRIOR_SD**2


def loglik(theta, x):
    return -0.5 * jnp.sum((x - theta) ** 2) / NOISE_SD**2


@pytest.fixture(scope="module")
def data():
    return np.asarray(np.array([1.5, -0.5]) + NOISE_SD * np.random.default_rng(0).standard_normal((N_DATA, 2)),
                      np.float32)


def exact_posterior(data):
    precision = 1 / PRIOR_SD**2 + N_DATA / NOISE_SD**2
    return data.sum(0) / NOISE_SD**2 / precision, 1 / np.sqrt(precision)


def test_grad_estimator_is_unbiased(data):
    estimate = sgld.grad_estimator(logprior, loglik, N_DATA)
    theta = jnp.array([0.3, -0.2])
    full = jax.grad(lambda t: logprior(t) + jnp.sum(jax.vmap(loglik, (None, 0))(t, data)))(theta)
    np.testing.assert_allclose(estimate(theta, data), full, rtol=1e-4)
    # The average over all one-point minibatches is the full gradient.
    singles = jax.jit(jax.vmap(lambda x: estimate(theta, x[None])))(data)
    np.testing.assert_allclose(singles.mean(0), full, rtol=1e-4)


def test_kernel_takes_the_estimator_and_minibatch_at_call_time(data):
    """One compiled kernel, two minibatches: each step is theta + h g(theta; batch) + sqrt(2 h) z exactly."""
    estimate = sgld.grad_estimator(logprior, loglik, N_DATA)
    kernel = jax.jit(chex.assert_max_traces(sgld.build_kernel(noise="jax"), n=1), static_argnums=2)
    state, key, h = sgld.init(jnp.array([0.3, -0.2])), jax.random.key(0), 1e-3
    for batch in (data[:40], data[40:80]):
        new, info = kernel(key, state, estimate, batch, h)
        z, _ = base.jax_normal_and_uniform(key, state.position)
        expected = state.position + h * estimate(state.position, batch) + np.sqrt(2 * h) * z
        np.testing.assert_allclose(new.position, expected, rtol=1e-5)
        assert int(new.step) == 1 and float(info.step_size) == pytest.approx(h)


def test_recovers_conjugate_posterior_mean(data):
    post_mean, post_sd = exact_posterior(data)
    alg = sgld.minibatch_sampler(sgld.grad_estimator(logprior, loglik, N_DATA), data, batch_size=40,
                                 step_size=sgld.polynomial_schedule(1e-3, b=10.0, gamma=0.55))
    states = jax.vmap(alg.init)(jnp.zeros((8, 2)))
    out = mcmc.sample_chain(alg.step, states, 4000, jax.random.key(1), num_chains=8, warmup=1000, thin=4)
    x = np.asarray(out.samples)
    assert out.samples.shape == (8, 1000, 2)
    np.testing.assert_allclose(x.mean((0, 1)), post_mean, atol=0.3 * post_sd)
    # Minibatch noise inflates the spread a little; it must still be the posterior's scale.
    assert np.all((x.std((0, 1)) > 0.8 * post_sd) & (x.std((0, 1)) < 1.3 * post_sd))
    assert int(out.final_state.step[0]) == 5000
    # The schedule decays: the mean step size after warm-up is below the first one.
    assert float(out.info_mean.step_size[0]) < 1e-3 * 10.0 ** -0.55


def test_polynomial_schedule_values():
    schedule = sgld.polynomial_schedule(0.1, b=1.0, gamma=0.5)
    np.testing.assert_allclose([schedule(0), schedule(3)], [0.1, 0.05], rtol=1e-6)
    with pytest.raises(ValueError, match="a > 0"):
        sgld.polynomial_schedule(-1.0)


def test_bad_arguments(data):
    est = sgld.grad_estimator(logprior, loglik, N_DATA)
    with pytest.raises(ValueError, match="leading"):
        sgld.minibatch_sampler(est, {"x": data, "y": data[:10]}, 10, 1e-3)
    with pytest.raises(ValueError, match="batch_size"):
        sgld.minibatch_sampler(est, data, 0, 1e-3)
    with pytest.raises(ValueError, match="data_size"):
        sgld.grad_estimator(logprior, loglik, 0)
