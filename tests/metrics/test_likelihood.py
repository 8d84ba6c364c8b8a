"""Tests for jgen.metrics.likelihood: unit conversions and bits/dim against closed forms."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from jgen.metrics import likelihood


def test_nats_bits_round_trip_and_the_uniform_discrete_model():
    np.testing.assert_allclose(likelihood.nats_to_bits(likelihood.bits_to_nats(3.25)), 3.25)
    assert likelihood.nats_to_bits(math.log(2.0)) == pytest.approx(1.0)
    # The uniform model of 8-bit images: -log P(k) = D log 256 nats, i.e. 8 bits/dim.
    d = 49
    assert likelihood.nats_to_bits_per_dim(d * math.log(256.0), d) == pytest.approx(8.0)
    # 25 binary pixels under the uniform model: 25 log 2 nats = 25 bits = 1 bit/dim.
    assert likelihood.nats_to_bits(25 * math.log(2.0)) == pytest.approx(25.0)
    with pytest.raises(ValueError, match="num_dims"):
        likelihood.nats_to_bits_per_dim(1.0, 0)


def test_bits_per_dim_on_the_unit_cube():
    # The uniform density on [0, 1)^D (log p = 0, no transform) is the uniform 8-bit model: 8 bits/dim.
    zeros = jnp.zeros(4)
    np.testing.assert_allclose(likelihood.bits_per_dim(zeros, zeros, 9), 8.0, rtol=1e-6)
    # A density twice as high everywhere (on half the cube) saves 1/D bits per dim; L levels give log2 L.
    np.testing.assert_allclose(likelihood.bits_per_dim(zeros + 9 * math.log(2.0), zeros, 9), 7.0, rtol=1e-6)
    np.testing.assert_allclose(likelihood.bits_per_dim(zeros, zeros, 9, num_levels=4), 2.0, rtol=1e-6)
    # The log-det of a transform counts like the log-density: y = 2x has p(y) = 2^-D and log|det| = D log 2.
    d = 3
    np.testing.assert_allclose(likelihood.bits_per_dim(zeros - d * math.log(2.0), zeros + d * math.log(2.0), d),
                               8.0, rtol=1e-6)


def test_independent_pixel_baseline_by_hand():
    train = np.array([[0, 1], [0, 2]])
    test = np.array([[0, 1]])
    # Pixel 0: P(0) = (2 + 1) / (2 + 4); pixel 1: P(1) = (1 + 1) / (2 + 4).
    expected = -(np.log2(3 / 6) + np.log2(2 / 6)) / 2
    np.testing.assert_allclose(likelihood.independent_pixel_bits_per_dim(train, test, num_levels=4), expected)
    # Heavy smoothing tends to the uniform model: log2(256) = 8 bits/dim.
    images = np.random.default_rng(0).integers(0, 256, (50, 3, 3, 1))
    np.testing.assert_allclose(likelihood.independent_pixel_bits_per_dim(images, images, smoothing=1e9), 8.0,
                               atol=1e-5)


def test_independent_pixel_baseline_bad_inputs():
    with pytest.raises(ValueError, match="same size"):
        likelihood.independent_pixel_bits_per_dim(np.zeros((2, 4), int), np.zeros((2, 5), int))
    with pytest.raises(ValueError, match="0..255"):
        likelihood.independent_pixel_bits_per_dim(np.full((2, 4), 256), np.zeros((2, 4), int))
    with pytest.raises(ValueError, match="smoothing"):
        likelihood.independent_pixel_bits_per_dim(np.zeros((2, 4), int), np.zeros((2, 4), int), smoothing=0.0)
