"""ELBO and IWAE bounds: closed-form KL, k = 1 equals the sample ELBO, the chunked accumulator, and
convergence to the exact marginal likelihood of a linear-Gaussian model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jgen.vae import bounds

D, P, NOISE = 2, 3, 0.5  # latent dim, data dim, observation noise of the linear-Gaussian model
W = np.array([[1.0, 0.5], [-0.7, 1.2], [0.3, -0.9]])
B_VEC = np.array([0.2, -0.1, 0.4])


def linear_gaussian(mean_shift: float = 0.3, var_inflation: float = 1.5):
    """p(z) = N(0, I), p(x | z) = N(W z + b, s^2 I), and a deliberately imperfect diagonal Gaussian encoder
    (the exact posterior's mean shifted and its marginal variances inflated), so that the IWAE gap is
    nonzero and shrinks with k. Returns (encode, log_likelihood, exact log p(x) function)."""
    post_cov = np.linalg.inv(np.eye(D) + W.T @ W / NOISE**2)
    gain = jnp.asarray(post_cov @ W.T / NOISE**2, jnp.float32)  # posterior mean = gain (x - b)
    log_var = jnp.asarray(np.log(var_inflation * np.diag(post_cov)), jnp.float32)

    def encode(x):
        mean = (x - B_VEC) @ gain.T + mean_shift
        return mean, jnp.broadcast_to(log_var, mean.shape)

    def log_likelihood(z, x):
        mu = z @ jnp.asarray(W, jnp.float32).T + B_VEC
        return jnp.sum(-0.5 * ((x - mu) / NOISE) ** 2 - np.log(NOISE) - 0.5 * np.log(2 * np.pi), axis=-1)

    marginal = stats.multivariate_normal(B_VEC, W @ W.T + NOISE**2 * np.eye(P))
    return encode, log_likelihood, lambda x: marginal.logpdf(np.asarray(x, np.float64))


# Jitted once per (model, k, chunk): eager dispatch of the many small ops would dominate these tests.
iwae = jax.jit(bounds.iwae_bound, static_argnums=(2, 3, 4), static_argnames="chunk_size")
elbo = jax.jit(bounds.elbo, static_argnums=(2, 3), static_argnames="analytic_kl")


@pytest.fixture(scope="module")
def data():
    x = jax.random.normal(jax.random.key(0), (64, P)) * 1.3
    return x


def test_gaussian_kl_closed_form_matches_monte_carlo():
    mean = jnp.array([[0.5, -1.0, 2.0]])
    log_var = jnp.array([[-1.0, 0.3, 0.0]])
    z = bounds.reparameterize(jax.random.normal(jax.random.key(1), (200_000, 3)), mean, log_var)
    mc = bounds.diag_gaussian_log_prob(z, mean, log_var) - bounds.standard_normal_log_prob(z)
    np.testing.assert_allclose(bounds.gaussian_kl(mean, log_var)[0], mc.mean(), rtol=0, atol=0.02)
    np.testing.assert_allclose(bounds.gaussian_kl(jnp.zeros((1, 4)), jnp.zeros((1, 4))), 0.0, atol=1e-7)


def test_iwae_with_one_sample_is_the_sample_elbo_and_averages_to_the_analytic_elbo(data):
    encode, log_lik, _ = linear_gaussian()
    key = jax.random.key(2)
    sample = elbo(key, data, encode, log_lik, analytic_kl=False)
    np.testing.assert_allclose(iwae(key, data, encode, log_lik, 1), sample.elbo, rtol=1e-5, atol=1e-5)
    analytic = elbo(key, data, encode, log_lik)
    np.testing.assert_allclose(analytic.elbo, analytic.recon - analytic.kl, rtol=1e-6)
    np.testing.assert_allclose(sample.recon, analytic.recon, rtol=1e-6)  # same z
    keys = jax.random.split(jax.random.key(3), 4000)
    both = jax.jit(jax.vmap(lambda k: (bounds.elbo(k, data, encode, log_lik, analytic_kl=False).elbo,
                                       bounds.elbo(k, data, encode, log_lik).elbo)))(keys)
    np.testing.assert_allclose(both[0].mean(0), both[1].mean(0), atol=0.05)  # the one-sample KL is unbiased


def test_chunked_accumulator_equals_one_logsumexp_over_the_same_samples(data):
    encode, log_lik, _ = linear_gaussian()
    key, k, chunk = jax.random.key(4), 10, 3  # 4 chunks, the last one padded with 2 masked samples
    got = iwae(key, data, encode, log_lik, k, chunk_size=chunk)
    mean, log_var = encode(data)
    eps = jnp.concatenate([jax.random.normal(jax.random.fold_in(key, j), (chunk, *mean.shape)) for j in range(4)])[:k]
    z = bounds.reparameterize(eps, mean, log_var)

    @jax.jit
    def reference(z):
        lw = jax.vmap(log_lik, in_axes=(0, None))(z, data) + bounds.standard_normal_log_prob(z) \
            - bounds.diag_gaussian_log_prob(z, mean, log_var)
        return jax.scipy.special.logsumexp(lw, axis=0) - np.log(k)

    np.testing.assert_allclose(got, reference(z), rtol=1e-5, atol=1e-5)


def test_iwae_increases_with_k_and_converges_to_the_exact_marginal_likelihood(data):
    encode, log_lik, exact_fn = linear_gaussian()
    exact = exact_fn(data)
    key = jax.random.key(5)
    gaps = {}
    for k in (1, 10, 100, 5000):
        bound = np.asarray(iwae(key, data, encode, log_lik, k, chunk_size=500), np.float64)
        gaps[k] = float(np.mean(exact - bound))
    # Monotone down to the Monte-Carlo noise of the mean gap (a few 1e-3 nats here), which k >= 100 reaches.
    assert gaps[1] > gaps[10] > max(gaps[100], gaps[5000]) and min(gaps.values()) > -0.005, gaps
    assert gaps[1] > 0.2 and abs(gaps[5000]) < 0.01, gaps  # the encoder is clearly imperfect, yet k = 5000 closes it


def test_bits_per_dim_and_bad_arguments(data):
    np.testing.assert_allclose(bounds.bits_per_dim(784 * np.log(2), 784), 1.0)
    encode, log_lik, _ = linear_gaussian()
    with pytest.raises(ValueError, match="num_samples"):
        bounds.iwae_bound(jax.random.key(0), data, encode, log_lik, 0)
