"""AUROC by ranks against sklearn, the Gaussian blur, and the grid KL of 2-D EBMs."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from jgen import ebm
from jgen.data import toy2d
from jgen.ebm import grid


def test_auroc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1.0, 300).round(1), rng.normal(0.0, 1.0, 200).round(1)  # rounding makes ties
    expected = roc_auc_score(np.r_[np.ones(300), np.zeros(200)], np.r_[a, b])
    assert ebm.auroc(a, b) == pytest.approx(expected, abs=1e-12)
    assert ebm.auroc([2.0, 3.0], [0.0, 1.0]) == 1.0 and ebm.auroc([1.0], [1.0]) == 0.5
    with pytest.raises(ValueError, match="finite scores"):
        ebm.auroc([np.nan], [0.0])


def test_gaussian_blur_keeps_flat_images_and_mass():
    flat = np.full((2, 16, 16, 1), 0.3, np.float32)
    np.testing.assert_allclose(np.asarray(ebm.gaussian_blur(flat, 1.0)), flat, atol=1e-6)
    dot = np.zeros((1, 16, 16), np.float32)
    dot[0, 8, 8] = 1.0
    blurred = np.asarray(ebm.gaussian_blur(dot, 1.0))
    assert blurred.sum() == pytest.approx(1.0, rel=1e-5) and blurred.max() < 0.2
    assert blurred[0, 8, 9] == pytest.approx(blurred[0, 9, 8]) and blurred[0, 8, 9] > blurred[0, 8, 10]


def test_grid_kl_is_zero_for_the_truth_and_positive_otherwise():
    lim, n = (-3.0, 5.0), 80
    pts = grid.grid_points(lim, lim, n)
    area = ((lim[1] - lim[0]) / n) ** 2
    log_p = grid.normalized_log_density(np.asarray(toy2d.log_prob("mixture4", pts)), area)
    assert np.sum(np.exp(log_p)) * area == pytest.approx(1.0)
    assert grid.grid_kl(log_p, log_p, area) == pytest.approx(0.0, abs=1e-12)
    flat = grid.normalized_log_density(np.zeros(len(pts)), area)
    assert grid.grid_kl(log_p, flat, area) > 1.0
