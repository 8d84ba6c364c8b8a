"""Tests for jgen.flows.image: dequantisation + logit round trip, bits/dim of the uniform model in logit space."""

import jax
import jax.numpy as jnp
import numpy as np

from jgen.flows import dequantize_logit, logit_to_levels
from jgen.metrics.likelihood import bits_per_dim

ALPHA = 0.05


def test_dequantize_logit_round_trips_to_the_integer_levels():
    images = jax.random.randint(jax.random.key(0), (16, 4, 4, 1), 0, 256).astype(jnp.uint8)
    y, log_det = dequantize_logit(jax.random.key(1), images, ALPHA)
    assert y.shape == images.shape and log_det.shape == (16,)
    np.testing.assert_array_equal(logit_to_levels(y, ALPHA), images)


def test_log_det_of_dequantize_logit_matches_jacfwd():
    images = jax.random.randint(jax.random.key(2), (2, 2, 3, 1), 0, 256)
    key = jax.random.key(3)
    _, log_det = dequantize_logit(key, images, ALPHA)
    x = (images + jax.random.uniform(key, images.shape)) / 256.0  # the same noise draw
    to_logit = lambda v: jnp.log(ALPHA + (1 - 2 * ALPHA) * v) - jnp.log1p(-(ALPHA + (1 - 2 * ALPHA) * v))
    for i in range(2):
        jac = jax.jacfwd(lambda v: to_logit(v).ravel())(x[i].ravel())
        np.testing.assert_allclose(log_det[i], jnp.linalg.slogdet(jac)[1], rtol=1e-5)


def test_bits_per_dim_of_the_uniform_density_is_eight():
    # If x ~ U[0,1)^D, y = logit(alpha + (1 - 2 alpha) x) has density
    # prod sigmoid(y)(1 - sigmoid(y)) / (1 - 2 alpha): the uniform model of 8-bit data, 8 bits/dim.
    images = jax.random.randint(jax.random.key(4), (8, 3, 3, 1), 0, 256)
    y, log_det = dequantize_logit(jax.random.key(5), images, ALPHA)
    s = jax.nn.sigmoid(y)
    log_p_y = jnp.sum(jnp.log(s * (1 - s) / (1 - 2 * ALPHA)), axis=(1, 2, 3))
    np.testing.assert_allclose(bits_per_dim(log_p_y, log_det, 9), 8.0, atol=1e-4)
    # A density twice as high everywhere saves exactly 1/D bits per dim.
    np.testing.assert_allclose(bits_per_dim(log_p_y + jnp.log(2.0) * 9, log_det, 9), 7.0, atol=1e-4)
