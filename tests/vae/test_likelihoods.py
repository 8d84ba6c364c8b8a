"""Decoder likelihoods against scipy and their own normalisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from jgen.vae import likelihoods


def test_discretized_logistic_sums_to_one_over_256_levels_and_matches_cdf_differences():
    lik = likelihoods.DiscretizedLogistic()
    mu = jnp.array([-1.2, -0.3, 0.0, 0.5, 0.99, 1.5])
    log_s = jnp.array([-6.0, -3.0, -1.0, 0.0, -4.5, -2.0])
    out = jnp.concatenate([jnp.broadcast_to(mu[:, None, None, None], (6, 1, 1, 1)),
                           jnp.broadcast_to(log_s[:, None, None, None], (6, 1, 1, 1))], axis=-1)
    levels = jnp.arange(256.0)
    logp = jax.jit(jax.vmap(lambda k: lik.log_prob_per_pixel(out, jnp.full((6, 1, 1, 1), k))))(levels)[..., 0, 0, 0]
    np.testing.assert_allclose(special.logsumexp(np.asarray(logp, np.float64), axis=0), 0.0, atol=2e-4)
    # Interior bins in float64 from the logistic CDF (where the bin mass is not vanishingly small).
    edges = (2 * np.arange(256.0) - 1) / 255 - 1
    cdf = stats.logistic.cdf(np.append(edges, np.inf)[None, :], loc=np.asarray(mu)[:, None],
                             scale=np.exp(np.asarray(log_s, np.float64))[:, None])
    cdf[:, 0] = 0.0
    p = np.diff(cdf, axis=1).T  # [256, 6]
    ok = p > 1e-6
    np.testing.assert_allclose(np.asarray(logp)[ok], np.log(p[ok]), rtol=2e-3, atol=2e-3)
    assert np.all(np.isfinite(np.asarray(logp)))  # also far out in the tails


def test_gaussian_fixed_and_learned_scale_match_scipy():
    x = jax.random.uniform(jax.random.key(0), (2, 3, 3, 1))
    mu = jax.random.uniform(jax.random.key(1), (2, 3, 3, 1))
    fixed = likelihoods.get("gaussian", scale=0.2)
    np.testing.assert_allclose(fixed.log_prob(mu, x), stats.norm.logpdf(x, mu, 0.2).reshape(2, -1).sum(1), rtol=1e-5)
    learned = likelihoods.get("gaussian", learn_scale=True)
    out = jnp.concatenate([mu, jnp.full_like(mu, np.log(0.3))], axis=-1)
    np.testing.assert_allclose(learned.log_prob(out, x), stats.norm.logpdf(x, mu, 0.3).reshape(2, -1).sum(1), rtol=1e-5)
    assert learned.out_channels(3) == 6 and fixed.out_channels(3) == 3


def test_bernoulli_and_bce_are_the_log_probabilities_of_the_logits():
    logits = jnp.array([[[[-30.0], [0.0]], [[2.0], [30.0]]]])
    x = jnp.array([[[[0.0], [1.0]], [[1.0], [0.0]]]])
    l = np.asarray(logits, np.float64)
    expected = np.sum(np.where(np.asarray(x) == 1, special.log_expit(l), special.log_expit(-l)))
    np.testing.assert_allclose(likelihoods.get("bernoulli").log_prob(logits, x), [expected], rtol=1e-5)
    np.testing.assert_allclose(likelihoods.get("bce").log_prob(logits, x), [expected], rtol=1e-5)


def test_unknown_likelihood_and_bad_scale_are_refused():
    with pytest.raises(ValueError, match="unknown likelihood"):
        likelihoods.get("poisson")
    with pytest.raises(ValueError, match="positive"):
        likelihoods.get("gaussian", scale=0.0)
