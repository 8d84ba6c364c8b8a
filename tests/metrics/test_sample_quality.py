"""Sample-quality metrics on synthetic features: closed forms, unbiasedness, and the known limits."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from jgen.metrics import sample_quality as sq


def _random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_from_stats_matches_the_closed_form():
    rng = np.random.default_rng(0)
    d = 6
    mu1, mu2, c1, c2 = rng.normal(size=d), rng.normal(size=d), _random_spd(rng, d), _random_spd(rng, d)
    cross = scipy.linalg.sqrtm(c1 @ c2).real  # the textbook formula, an independent route
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * cross)
    assert sq.frechet_distance_from_stats(mu1, c1, mu2, c2) == pytest.approx(expected, rel=1e-8)
    # Diagonal covariances: W2^2 = |mu1 - mu2|^2 + sum (s1 - s2)^2.
    s1, s2 = rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d)
    got = sq.frechet_distance_from_stats(mu1, np.diag(s1**2), mu2, np.diag(s2**2))
    assert got == pytest.approx(np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2), rel=1e-10)
    assert sq.frechet_distance_from_stats(mu1, c1, mu1, c1) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_of_two_gaussian_samples_approaches_the_closed_form():
    rng = np.random.default_rng(1)
    d, n = 4, 50_000
    mu1, mu2, c1, c2 = np.zeros(d), np.full(d, 0.5), _random_spd(rng, d), _random_spd(rng, d)
    x = rng.multivariate_normal(mu1, c1, n)
    y = rng.multivariate_normal(mu2, c2, n)
    exact = sq.frechet_distance_from_stats(mu1, c1, mu2, c2)
    # The estimate's positive O(1/n) bias is ~ (tr c1 + tr c2) / n here, far inside the tolerance.
    assert sq.frechet_distance(x, y) == pytest.approx(exact, rel=0.03)


def test_kid_is_unbiased_on_two_samples_of_one_distribution_and_positive_otherwise():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(4000, 16)), rng.normal(size=(4000, 16))
    value, se = sq.kid(x, y, num_subsets=20)
    assert abs(value) < 3 * se
    shifted, se_shifted = sq.kid(x, y + 0.3)
    assert shifted > 10 * se_shifted


def test_kid_rejects_too_few_points():
    with pytest.raises(ValueError, match="num_subsets"):
        sq.kid(np.zeros((5, 2)), np.zeros((5, 2)), num_subsets=10)


def test_precision_recall_density_coverage_of_a_set_against_itself_are_one():
    x = np.random.default_rng(3).normal(size=(600, 8))
    pr = sq.precision_recall(x, x)
    dc = sq.density_coverage(x, x)
    assert pr == {"precision": 1.0, "recall": 1.0}
    assert dc["coverage"] == 1.0
    # Each real ball holds the point itself and the k - 1 points strictly nearer than the k-th neighbour.
    assert dc["density"] == pytest.approx(1.0, abs=1e-3)


def test_density_coverage_of_two_samples_of_one_distribution_and_of_a_collapsed_model():
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8))
    dc = sq.density_coverage(real, fake, k=5)
    assert dc["density"] == pytest.approx(1.0, abs=0.1)  # E[density] = 1 (Naeem et al.)
    assert dc["coverage"] == pytest.approx(1 - 0.5**5, abs=0.03)
    # A model that puts all its mass on one small region: high fidelity there, almost no recall/coverage.
    collapsed = real[:1] + 0.01 * rng.normal(size=(2000, 8))
    pr = sq.precision_recall(real, collapsed)
    assert pr["recall"] < 0.05
    assert sq.density_coverage(real, collapsed)["coverage"] < 0.05


def test_class_coverage_and_inception_score_limits():
    one_class = sq.class_coverage(np.full(500, 3), 10)
    assert one_class == {"class_coverage": 0.0, "classes_present": 0.1}
    uniform = sq.class_coverage(np.arange(1000) % 10, 10)
    assert uniform["class_coverage"] == pytest.approx(1.0) and uniform["classes_present"] == 1.0
    probs = np.eye(10)[np.arange(1000) % 10]
    assert sq.inception_score(probs) == pytest.approx(10.0, rel=1e-6)
    assert sq.inception_score(np.tile(probs[:1], (1000, 1))) == pytest.approx(1.0, abs=1e-9)
    assert sq.class_coverage(probs, 10)["classes_present"] == 1.0


def test_nearest_neighbour_distances_match_brute_force_and_memorisation_spots_copies():
    rng = np.random.default_rng(5)
    train, queries = rng.normal(size=(9000, 5)), rng.normal(size=(50, 5))
    d = np.linalg.norm(queries[:, None] - train[None], axis=-1)
    np.testing.assert_allclose(sq.nearest_neighbour_distances(queries, train), np.sort(d, 1)[:, :2], rtol=1e-4)
    copies = train[:100] + 1e-4 * rng.normal(size=(100, 5))
    assert sq.memorisation_rate(copies, train) == 1.0
    assert sq.memorisation_rate(rng.normal(size=(200, 5)), train) < 0.1


def test_squared_mmd_matches_a_direct_double_sum():
    rng = np.random.default_rng(6)
    s, p, h = rng.normal(size=(30, 2)), rng.normal(size=(20, 2)) + 0.5, 0.7
    k = lambda a, b: np.exp(-np.sum((a[:, None] - b[None]) ** 2, -1) / (2 * h**2))
    kss = k(s, s)
    expected = (kss.sum() - np.trace(kss)) / (30 * 29) + k(p, p).mean() - 2 * k(s, p).mean()
    got = float(sq.squared_mmd(jnp.asarray(s, jnp.float32), jnp.asarray(p, jnp.float32), h))
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_kl_estimate_of_two_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(7)
    x = rng.normal(size=100_000)
    log_p = -0.5 * x**2 - 0.5 * math.log(2 * math.pi)
    mu, s = 0.3, 1.5  # q = N(mu, s^2): KL(p || q) = log s + (1 + mu^2) / (2 s^2) - 1/2
    log_q = -0.5 * ((x - mu) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)
    got = sq.kl_estimate(log_p, log_q)
    assert got["kl"] == pytest.approx(math.log(s) + (1 + mu**2) / (2 * s**2) - 0.5, abs=4 * got["kl_se"])
    assert got["entropy"] == pytest.approx(0.5 * math.log(2 * math.pi * math.e), abs=0.01)
