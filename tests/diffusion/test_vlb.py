"""The variational bound against every term recomputed here in float64 numpy/scipy from the betas alone."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import norm

from jgen.diffusion import schedules, vlb

T = 10
BETAS = np.linspace(1e-2, 0.3, T)


@jax.jit
def tiny_model(x_t, t):
    """A fixed smooth eps_theta(x_t, t) that is neither exact nor zero."""
    return jnp.tanh(0.8 * x_t + 0.05 * t.reshape((-1,) + (1,) * (x_t.ndim - 1)) - 0.2)


def _gauss_kl(m1, v1, m2, v2):
    return 0.5 * (np.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1)


def test_bound_matches_a_direct_sum_of_gaussian_kls():
    sched = schedules.schedule_from_betas(BETAS)
    levels = np.array([[0, 255, 17, 128], [3, 250, 254, 1], [90, 91, 92, 200]]).reshape(3, 2, 2, 1)
    x0 = levels / 127.5 - 1.0
    rng = jax.random.PRNGKey(7)
    terms = vlb.vlb_terms(tiny_model, sched, jnp.asarray(x0, jnp.float32), rng)

    ab = np.cumprod(1 - BETAS)
    ab_prev = np.append(1.0, ab[:-1])
    post_var = BETAS * (1 - ab_prev) / (1 - ab)
    model_var = np.append(post_var[1], post_var[1:])
    decoder, kls = None, []
    for t in range(1, T + 1):
        eps = np.asarray(jax.random.normal(jax.random.fold_in(rng, t), x0.shape), np.float64)
        x_t = np.sqrt(ab[t - 1]) * x0 + np.sqrt(1 - ab[t - 1]) * eps
        eps_hat = np.asarray(tiny_model(jnp.asarray(x_t, jnp.float32), jnp.full(3, t)), np.float64)
        x0_hat = (x_t - np.sqrt(1 - ab[t - 1]) * eps_hat) / np.sqrt(ab[t - 1])
        # Bayes: prior x_{t-1} ~ N(sqrt(ab_{t-1}) x_0, 1 - ab_{t-1}), likelihood x_t ~ N(sqrt(alpha_t) x_{t-1}, beta_t).
        c1 = BETAS[t - 1] * np.sqrt(ab_prev[t - 1]) / (1 - ab[t - 1])
        c2 = (1 - ab_prev[t - 1]) * np.sqrt(1 - BETAS[t - 1]) / (1 - ab[t - 1])
        model_mean = c1 * x0_hat + c2 * x_t
        if t == 1:
            sd = np.sqrt(model_var[0])
            upper = np.where(levels == 255, np.inf, (x0 + 1 / 255 - model_mean) / sd)
            lower = np.where(levels == 0, -np.inf, (x0 - 1 / 255 - model_mean) / sd)
            decoder = -np.log(norm.cdf(upper) - norm.cdf(lower)).reshape(3, -1).sum(-1)
        else:
            kl = _gauss_kl(c1 * x0 + c2 * x_t, post_var[t - 1], model_mean, model_var[t - 1])
            kls.append(kl.reshape(3, -1).sum(-1))
    prior = _gauss_kl(np.sqrt(ab[-1]) * x0, 1 - ab[-1], 0.0, 1.0).reshape(3, -1).sum(-1)

    np.testing.assert_allclose(terms.prior, prior, rtol=1e-4)
    np.testing.assert_allclose(terms.decoder, decoder, rtol=1e-3)
    np.testing.assert_allclose(terms.diffusion, np.stack(kls, 1), rtol=1e-3, atol=1e-5)
    total = prior + decoder + np.sum(kls, 0)
    np.testing.assert_allclose(terms.total, total, rtol=1e-3)
    bpd = vlb.bits_per_dim(tiny_model, sched, jnp.asarray(x0, jnp.float32), rng)
    np.testing.assert_allclose(bpd, total / (4 * np.log(2)), rtol=1e-3)


def test_decoder_is_a_distribution_over_the_levels():
    x = jnp.asarray(np.arange(256) / 127.5 - 1.0, jnp.float32)[:, None]
    mean = jnp.array([-1.0, -0.3, 0.0, 0.999, 1.4])
    log_scale = jnp.log(jnp.array([1e-3, 0.05, 0.5, 0.01, 2.0]))
    probs = np.exp(np.asarray(jax.jit(vlb.discretized_gaussian_log_likelihood)(x, mean, log_scale), np.float64))
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)
    # A narrow decoder centred on a level puts almost all of its mass there; the top level takes the upper tail.
    assert probs[0, 0] > 0.999
    np.testing.assert_allclose(probs[255, 3], norm.sf((1 - 1 / 255 - 0.999) / 0.01), rtol=1e-4)


def test_model_variances():
    sched = schedules.schedule_from_betas(BETAS)
    beta = np.asarray(vlb.model_log_variance(sched, "beta"))
    np.testing.assert_allclose(beta[1:], np.log(BETAS[1:]), rtol=1e-5)
    np.testing.assert_allclose(beta[0], sched.posterior_log_variance_clipped[1])
    try:
        vlb.model_log_variance(sched, "learned")
    except ValueError as e:
        assert "variance must be one of ('posterior', 'beta')" in str(e)
    else:
        raise AssertionError("an unknown variance was accepted")
