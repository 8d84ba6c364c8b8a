"""DDPM and DDIM samplers: DDIM's eta = 1 variance and step are the ancestral posterior ones, eta = 0 is
deterministic and exact under a perfect noise oracle, sub-sequences and intermediates have the asked lengths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.diffusion import ddpm, samplers, schedules

T = 10
SCHED = schedules.linear_beta_schedule(T, 1e-2, 0.3)
C = jnp.array([[0.3, -0.7, 0.9]])  # the single data point


TRACES = []


def oracle(x_t, t):
    """The exact E[eps | x_t] when x_0 = C surely: (x_t - sqrt(ab_t) C) / sqrt(1 - ab_t)."""
    TRACES.append(x_t.shape)  # runs once per trace, not per step: counts compilations
    ab = SCHED.alpha_bars[t - 1][:, None]
    return (x_t - jnp.sqrt(ab) * C) / jnp.sqrt(1 - ab)


def some_eps(x_t, t):
    return jnp.tanh(0.5 * x_t + 0.1 * t[:, None])


def test_ddim_eta_one_is_the_ancestral_posterior_step():
    ts = jnp.arange(1, T + 1)
    np.testing.assert_allclose(samplers.ddim_sigma(SCHED, ts, ts - 1, 1.0) ** 2, SCHED.posterior_variance,
                               rtol=1e-4, atol=1e-7)
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 3))
    key = jax.random.PRNGKey(1)

    @jax.jit
    def both(t):
        return (samplers.ddim_step(some_eps, SCHED, x, t, t - 1, key, eta=1.0),
                samplers.ddpm_step(some_eps, SCHED, x, t, key, variance="posterior"))

    for t in (2, 6, 10):
        ddim, ddpm_ = both(t)
        np.testing.assert_allclose(ddim, ddpm_, rtol=1e-4, atol=1e-5)


def test_ddim_eta_zero_is_deterministic_and_exact_under_the_oracle():
    x_T = jax.random.normal(jax.random.PRNGKey(2), (4, 3))
    traces_before = len(TRACES)
    runs = [samplers.ddim_sample(oracle, SCHED, jax.random.PRNGKey(seed), (4, 3), x_T=x_T, **kwargs)
            for seed, kwargs in [(3, {}), (4, {}), (3, dict(timesteps=[9, 4, 2]))]]
    np.testing.assert_array_equal(runs[0], runs[1])  # another rng, the same x_T: the same x_0
    assert len(TRACES) - traces_before == 2  # the second full-sequence run reused the first one's compilation
    for x0 in runs:
        np.testing.assert_allclose(x0, jnp.broadcast_to(C, (4, 3)), atol=1e-5)


def test_subsequences_and_intermediates():
    ts = samplers.ddim_timesteps(T, 4)
    assert ts.tolist() == [10, 7, 4, 1]
    assert samplers.ddim_timesteps(T, T).tolist() == list(range(T, 0, -1))
    # Under the oracle x0_hat = C at every step, so the last step (to t = 0) lands on C for any eta.
    x_T = jax.random.normal(jax.random.PRNGKey(5), (2, 3))
    x0, states = samplers.ddim_sample(oracle, SCHED, jax.random.PRNGKey(5), (2, 3), num_sample_steps=4, eta=0.5,
                                      x_T=x_T, every=3)
    assert states.shape == (4 // 3 + 1, 2, 3)
    np.testing.assert_array_equal(states[0], x_T)
    np.testing.assert_allclose(x0, jnp.broadcast_to(C, (2, 3)), atol=1e-5)
    for bad in ([9, 9, 1], [11, 3], [3, 0]):
        with pytest.raises(ValueError, match="strictly decreasing sequence in 1..10"):
            samplers.ddim_sample(some_eps, SCHED, jax.random.PRNGKey(0), (2, 3), timesteps=bad)
    with pytest.raises(ValueError, match="num_sample_steps <= T = 10"):
        samplers.ddim_timesteps(T, 11)


def test_ddpm_sample_draws_what_ancestral_sample_draws():
    key = jax.random.PRNGKey(6)
    x0, states = samplers.ddpm_sample(some_eps, SCHED, key, (3, 3), every=5)
    np.testing.assert_allclose(x0, ddpm.ancestral_sample(some_eps, SCHED, key, (3, 3)), rtol=1e-5, atol=1e-6)
    assert states.shape == (3, 3, 3)
    with pytest.raises(ValueError, match="variance must be one of"):
        samplers.ddpm_sample(some_eps, SCHED, key, (3, 3), variance="learned")
