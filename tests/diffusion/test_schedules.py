"""Schedule quantities against Bayes' rule on Gaussians, computed here in float64 from the betas alone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.diffusion import ddpm, schedules


@pytest.mark.parametrize("name", schedules.SCHEDULES)
def test_posterior_matches_bayes_on_gaussians(name):
    s = jax.tree.map(np.asarray, schedules.make_schedule(name, 10))
    b = s.betas.astype(np.float64)
    ab = np.cumprod(1 - b)
    for t in range(2, 11):  # steps t = 2..T (t = 1 has a point-mass posterior)
        # q(x_{t-1} | x_0) = N(sqrt(ab_{t-1}) x0, 1 - ab_{t-1}) as the prior on x_{t-1};
        # q(x_t | x_{t-1}) = N(sqrt(1 - b_t) x_{t-1}, b_t) as the likelihood; the posterior precision adds up.
        prior_var, lik_scale, lik_var = 1 - ab[t - 2], np.sqrt(1 - b[t - 1]), b[t - 1]
        post_var = 1 / (1 / prior_var + lik_scale**2 / lik_var)
        # mean = post_var (sqrt(ab_{t-1}) x0 / prior_var + lik_scale x_t / lik_var) = c1 x0 + c2 x_t
        c1 = post_var * np.sqrt(ab[t - 2]) / prior_var
        c2 = post_var * lik_scale / lik_var
        np.testing.assert_allclose(s.posterior_variance[t - 1], post_var, rtol=1e-3)
        np.testing.assert_allclose(s.posterior_log_variance_clipped[t - 1], np.log(post_var), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(s.posterior_mean_coef1[t - 1], c1, rtol=1e-3)
        np.testing.assert_allclose(s.posterior_mean_coef2[t - 1], c2, rtol=1e-3)
    assert s.posterior_variance[0] == 0 and s.posterior_log_variance_clipped[0] == s.posterior_log_variance_clipped[1]
    np.testing.assert_allclose(s.alpha_bars_prev, np.append(1, s.alpha_bars[:-1]))
    np.testing.assert_allclose(s.sqrt_recip_alpha_bars * s.sqrt_alpha_bars, 1, rtol=1e-6)
    np.testing.assert_allclose(s.sqrt_recipm1_alpha_bars, np.sqrt(1 / ab - 1), rtol=1e-3)


def _zero_eps(x, t):
    return jnp.zeros_like(x)


def test_q_sample_moments_on_images_and_loss_shapes():
    s = schedules.linear_beta_schedule(10, 1e-2, 0.3)
    x0 = jnp.full((3000, 3, 3, 1), -0.5)
    t = np.repeat([1, 5, 10], 1000)
    eps = jax.random.normal(jax.random.PRNGKey(0), x0.shape)
    xt = np.asarray(jax.jit(ddpm.q_sample)(s, x0, jnp.asarray(t), eps))
    for step in (1, 5, 10):
        sel = xt[t == step]
        std = float(s.sqrt_one_minus_alpha_bars[step - 1])
        # 9000 draws each: 5 standard errors of the mean and of the standard deviation.
        np.testing.assert_allclose(sel.mean(), -0.5 * s.sqrt_alpha_bars[step - 1], atol=5 * std / np.sqrt(sel.size))
        np.testing.assert_allclose(sel.std(), std, rtol=5 / np.sqrt(2 * sel.size))
    # The epsilon-prediction loss of the zero predictor is E||eps||^2 / dim = 1.
    loss = jax.jit(ddpm.noise_prediction_loss, static_argnums=0)(_zero_eps, s, x0, jax.random.PRNGKey(1))
    np.testing.assert_allclose(loss, 1.0, atol=0.03)


def test_schedule_is_a_pytree_that_jits():
    s = schedules.cosine_beta_schedule(10)
    assert len(jax.tree.leaves(s)) == len(schedules.Schedule._fields)
    out = jax.jit(lambda sch: sch.posterior_variance.sum())(s)
    np.testing.assert_allclose(out, np.asarray(s.posterior_variance).sum(), rtol=1e-6)
