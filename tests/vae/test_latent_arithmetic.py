"""Latent arithmetic (interpolation, class means, style transfer) against hand-computed latents."""

import numpy as np
import pytest

from jgen.vae import latent


def test_interpolation_is_linear_with_exact_endpoints_for_one_or_many_pairs():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 5)).astype(np.float32), rng.normal(size=(3, 5)).astype(np.float32)
    alphas = [0.0, 0.25, 0.5, 0.75, 1.0]
    path = latent.interpolate(a, b, alphas)
    assert path.shape == (3, 5, 5) and path.dtype == np.float32
    np.testing.assert_array_equal(path[:, 0], a) and np.testing.assert_array_equal(path[:, -1], b)
    np.testing.assert_allclose(path[:, 2], (a + b) / 2, rtol=1e-6)
    np.testing.assert_allclose(np.diff(path, axis=1), np.repeat((b - a)[:, None] / 4, 4, 1), atol=1e-6)
    np.testing.assert_array_equal(latent.interpolate(a[1], b[1], alphas), path[1])


def test_class_means_skip_unlabelled_and_style_transfer_adds_bs_deviation_from_its_class():
    z = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [10.0, 10.0]])
    labels = np.array([0, 0, 1, -1])  # -1: unlabelled, ignored
    means = latent.class_means(z, labels)
    np.testing.assert_allclose(means, [[1.0, 0.0], [0.0, 4.0]])
    z_a, z_b = np.array([5.0, 5.0], np.float32), np.array([2.0, 0.0], np.float32)
    path = latent.style_transfer(z_a, z_b, means[0], np.linspace(0, 1, 6))
    np.testing.assert_array_equal(path[0], z_a)  # lambda = 0: A itself
    np.testing.assert_allclose(path[-1], [6.0, 5.0])  # A + (B - mean of B's class)
    np.testing.assert_allclose(path[3], [5.6, 5.0], rtol=1e-6)


def test_bad_inputs_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="equal shape"):
        latent.interpolate(np.zeros(3), np.zeros(4), [0, 1])
    with pytest.raises(ValueError, match="non-empty"):
        latent.interpolate(np.zeros(3), np.zeros(3), [])
    with pytest.raises(ValueError, match="at least one example per class"):
        latent.class_means(np.zeros((3, 2)), np.array([0, 0, 2]))
    with pytest.raises(ValueError, match="0..1"):
        latent.class_means(np.zeros((3, 2)), np.array([0, 1, 2]), num_classes=2)
    with pytest.raises(ValueError, match="z_b's shape"):
        latent.style_transfer(np.zeros(3), np.zeros(3), np.zeros(2), [0.5])
