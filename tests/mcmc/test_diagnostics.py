"""Diagnostics against TFP's JAX substrate, the AR(1) closed form, and Vehtari et al.'s motivating cases."""

import jax
import numpy as np
import pytest
from tensorflow_probability.substrates import jax as tfp

from jgen.mcmc import diagnostics as dg


def ar1(phi, num_chains, num_draws, dim=1, seed=0, offsets=None):
    """Stationary AR(1) chains x_t = phi x_{t-1} + sqrt(1 - phi^2) e_t, shaped [chains, draws, dim]."""
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((num_chains, num_draws, dim))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0]
    scale = np.sqrt(1 - phi**2)
    for t in range(1, num_draws):
        x[:, t] = phi * x[:, t - 1] + scale * e[:, t]
    if offsets is not None:
        x += np.asarray(offsets)[:, None, None]
    return x


def test_autocorrelation_matches_direct_sum():
    x = ar1(0.7, 3, 300, dim=2)
    rho = dg.autocorrelation(x)
    for c in range(3):
        for i in range(2):
            v = x[c, :, i] - x[c, :, i].mean()
            direct = np.array([np.dot(v[: 300 - k], v[k:]) for k in range(300)]) / np.dot(v, v)
            np.testing.assert_allclose(rho[c, :, i], direct, atol=1e-12)
    assert rho[0, 1, 0] == pytest.approx(0.7, abs=0.1)


def test_ess_matches_ar1_closed_form():
    phi = 0.6
    x = ar1(phi, 4, 20_000, dim=3)
    expected = 4 * 20_000 * (1 - phi) / (1 + phi)
    for method in ("identity", "mean", "bulk"):
        np.testing.assert_allclose(dg.effective_sample_size(x, method), expected, rtol=0.08)


def test_ess_matches_tfp_cross_chain():
    """Same estimator (Vehtari et al. eq. 10, Geyer pairs). TFP skips the monotone step and Stan's extra even
    term and weights lag k by (N - k)/N, so the two agree closely for most coordinates and differ by a few
    percent where a noisy pair sum triggers the monotone correction."""
    x = ar1(0.8, 4, 5000, dim=24, seed=1).astype(np.float32)
    tfp_ess = np.asarray(jax.jit(lambda y: tfp.mcmc.effective_sample_size(  # eager runs op by op: 5x slower
        y, cross_chain_dims=1, filter_beyond_positive_pairs=True))(np.moveaxis(x, 0, 1)))
    ratio = dg.effective_sample_size(x, "identity") / tfp_ess
    assert abs(np.median(ratio) - 1) < 0.005 and np.all(np.abs(ratio - 1) < 0.25), ratio


def test_split_rhat_matches_tfp_exactly():
    x = ar1(0.5, 4, 1000, dim=2, seed=2, offsets=[0.0, 0.0, 0.1, -0.1]).astype(np.float32)
    n_half, m_split = 500, 8
    tfp_r = np.asarray(tfp.mcmc.potential_scale_reduction(np.moveaxis(x, 0, 1), split_chains=True))
    # TFP returns Brooks & Gelman's (m+1)/m var+/W - (n-1)/(mn); ours is sqrt(var+/W).
    var_ratio = (tfp_r + (n_half - 1) / (m_split * n_half)) * m_split / (m_split + 1)
    np.testing.assert_allclose(dg.rhat(x, "split"), np.sqrt(var_ratio), rtol=1e-5)


def test_rhat_flags_unmixed_chains_and_passes_mixed_ones():
    mixed = ar1(0.5, 4, 2000, seed=3)
    assert np.all(dg.rhat(mixed) < 1.01)
    shifted = ar1(0.5, 4, 2000, seed=3, offsets=[0.0, 0.0, 0.0, 1.0])
    assert np.all(dg.rhat(shifted) > 1.05)
    # Same means, different scales: classic split R-hat misses it, the rank-normalised folded one does not.
    scaled = mixed.copy()
    scaled[0] *= 3.0
    assert dg.rhat(scaled, "split")[0] < 1.05
    assert dg.rhat(scaled, "rank")[0] > 1.1


def test_rank_based_diagnostics_are_invariant_to_monotone_maps():
    x = ar1(0.7, 4, 2000, dim=2, seed=4)
    np.testing.assert_allclose(dg.effective_sample_size(np.exp(x)), dg.effective_sample_size(x), rtol=1e-10)
    np.testing.assert_allclose(dg.rhat(np.exp(x)), dg.rhat(x), rtol=1e-10)


def test_rank_normalize_and_split():
    x = np.arange(12.0).reshape(2, 6)
    s = dg.split_chains(x)
    np.testing.assert_array_equal(s, [[0, 1, 2], [6, 7, 8], [3, 4, 5], [9, 10, 11]])
    z = dg.rank_normalize(np.array([[1.0, 1.0, 3.0, 4.0]]))
    assert z[0, 0] == z[0, 1] and z[0, 1] < z[0, 2] < z[0, 3]  # ties share their average rank


def test_tail_ess_and_mcse():
    x = ar1(0.0, 4, 4000, seed=5)
    assert dg.effective_sample_size(x, "tail")[0] == pytest.approx(16_000, rel=0.15)
    np.testing.assert_allclose(dg.mcse_mean(x), 1 / np.sqrt(16_000), rtol=0.1)


def test_rates_and_acceptance():
    assert dg.ess_per_second(100.0, 4.0) == 25.0
    assert dg.ess_per_gradient(np.array([10.0, 20.0]), 10)[1] == 2.0
    assert dg.acceptance_rate([True, False, True, True]) == 0.75
    with pytest.raises(ValueError, match="seconds"):
        dg.ess_per_second(1.0, 0.0)


def test_bad_input():
    with pytest.raises(ValueError, match="num_chains, num_draws"):
        dg.effective_sample_size(np.zeros(10))
    with pytest.raises(ValueError, match="at least 4 draws"):
        dg.rhat(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="unknown ESS method"):
        dg.effective_sample_size(np.zeros((2, 10)), "median")
    with pytest.raises(ValueError, match="2 chains"):
        dg.rhat(np.random.default_rng(0).standard_normal((1, 10)), "identity")
    assert np.isnan(dg.effective_sample_size(np.ones((2, 10))))[()]
