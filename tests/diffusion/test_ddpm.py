"""DDPM against Gaussian data, where the optimal noise predictor and its loss are known in closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.diffusion import DenoisingMLP, ancestral_sample, ddpm, linear_beta_schedule, noise_prediction_loss, q_sample

S = 1.7  # data std


def optimal_eps(schedule):
    """E[eps | x_t] for x_0 ~ N(0, S^2 I): sqrt(1 - ab) x_t / (ab S^2 + 1 - ab)."""
    def eps_fn(x, t):
        ab = schedule.alpha_bars[t - 1][:, None]
        return jnp.sqrt(1 - ab) * x / (ab * S**2 + 1 - ab)
    return eps_fn


def test_schedule_and_alpha_bar_curve():
    s = linear_beta_schedule(50, 1e-4, 2e-2)
    np.testing.assert_allclose(np.asarray(s.betas)[[0, -1]], [1e-4, 2e-2], rtol=1e-6)
    curve = ddpm.alpha_bar_curve(s)
    assert curve.shape == (51,) and curve[0] == 1.0
    np.testing.assert_allclose(curve[1:], np.cumprod(1 - np.linspace(1e-4, 2e-2, 50)), rtol=1e-5)
    assert np.all(np.diff(curve) < 0)
    with pytest.raises(ValueError, match="beta_start"):
        linear_beta_schedule(10, 0.5, 0.1)


def test_cosine_schedule_follows_its_closed_form_and_reaches_pure_noise():
    s = ddpm.cosine_beta_schedule(50)
    t = np.arange(51) / 50
    f = np.cos((t + 0.008) / 1.008 * np.pi / 2) ** 2
    # Unclipped steps follow alpha_bar_t = f(t) / f(0); only the last beta hits the 0.999 clip.
    np.testing.assert_allclose(np.asarray(s.alpha_bars)[:-1], (f / f[0])[1:-1], rtol=1e-4)
    assert float(s.betas[-1]) == pytest.approx(0.999) and float(s.alpha_bars[-1]) < 1e-5
    assert ddpm.make_schedule("cosine", 50).betas.shape == (50,)
    with pytest.raises(ValueError, match="unknown noise schedule 'cosin'; expected one of linear, cosine"):
        ddpm.make_schedule("cosin", 50)


def test_q_sample_moments():
    s = linear_beta_schedule(50)
    x0 = jnp.full((200_000, 1), 2.0)
    eps = jax.random.normal(jax.random.PRNGKey(0), x0.shape)
    xt = q_sample(s, x0, 25, eps)
    ab = float(s.alpha_bars[24])
    np.testing.assert_allclose(xt.mean(), 2.0 * np.sqrt(ab), atol=0.01)
    np.testing.assert_allclose(xt.var(), 1 - ab, rtol=0.02)


def test_loss_of_optimal_predictor_matches_closed_form():
    s = linear_beta_schedule(50)
    x0 = S * jax.random.normal(jax.random.PRNGKey(1), (400_000, 2))
    loss = noise_prediction_loss(optimal_eps(s), s, x0, jax.random.PRNGKey(2))
    ab = np.asarray(s.alpha_bars, np.float64)
    expected = np.mean(1 - (1 - ab) / (ab * S**2 + 1 - ab))  # Var(eps | x_t), averaged over t
    np.testing.assert_allclose(loss, expected, rtol=0.02)


def test_ancestral_sampler_recovers_gaussian_data_variance():
    s = linear_beta_schedule(1000, 1e-4, 2e-2)  # alpha_bar_T ~ 0: x_T is N(0, I)
    x0, traj = ancestral_sample(optimal_eps(s), s, jax.random.PRNGKey(3), (20_000, 2), return_trajectory=True)
    assert traj.shape == (1001, 20_000, 2)
    np.testing.assert_allclose(np.std(x0, axis=0), [S, S], rtol=0.03)
    np.testing.assert_allclose(np.mean(x0, axis=0), [0, 0], atol=0.05)


@pytest.mark.parametrize("embedding", ["none", "linear", "fourier"])
def test_denoising_mlp_time_dependence(embedding):
    model = DenoisingMLP(num_steps=50, time_embedding=embedding)
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 2))
    params = model.init(jax.random.PRNGKey(1), x, jnp.ones(4, jnp.int32))
    out1 = model.apply(params, x, jnp.full(4, 1, jnp.int32))
    out50 = model.apply(params, x, jnp.full(4, 50, jnp.int32))
    assert out1.shape == (4, 2)
    assert np.allclose(out1, out50) == (embedding == "none")
    with pytest.raises(ValueError, match="time_embedding"):
        DenoisingMLP(num_steps=50, time_embedding="sinusoid").init(jax.random.PRNGKey(0), x, jnp.ones(4, jnp.int32))
