"""Tests for jgen.autoregressive.pixelcnn: raster causality and no blind spot by gradients, normalisation."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.autoregressive import pixelcnn


def _init(num_layers=3, num_levels=4, shape=(4, 4), seed=0):
    model = pixelcnn.GatedPixelCNN(num_levels=num_levels, channels=8, num_layers=num_layers,
                                   first_kernel_size=3, kernel_size=3, head_channels=16)
    params = model.init(jax.random.key(seed), jnp.zeros((1,) + shape, jnp.int32))
    return model, params


def _dependency(model, params, x):
    """[HW, HW] bool: does output pixel i (raster index) depend on input pixel j? (random projections)."""
    h, w = x.shape
    r = jax.random.normal(jax.random.key(7), (h * w, model.num_levels))

    def projected(flat):
        logits = model.apply(params, flat.reshape(1, h, w))[0].reshape(h * w, -1)
        return (logits * r).sum(-1)

    jac = jax.jit(jax.jacrev(projected))(x.reshape(-1).astype(jnp.float32))
    return np.abs(np.asarray(jac)) > 0


def test_masks():
    v, h = pixelcnn.causal_masks(3, "A")
    np.testing.assert_array_equal(v, [[1, 1, 1], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(h, [[1, 0, 0]])
    v, h = pixelcnn.causal_masks(3, "B")
    np.testing.assert_array_equal(v, [[1, 1, 1], [1, 1, 1], [0, 0, 0]])
    np.testing.assert_array_equal(h, [[1, 1, 0]])
    with pytest.raises(ValueError, match="mask_type"):
        pixelcnn.causal_masks(3, "C")
    with pytest.raises(ValueError, match="odd"):
        pixelcnn.causal_masks(4, "A")


def test_causal_in_raster_order_and_no_blind_spot():
    # Reach 1 + (3 - 1) * 1 = 3 = W - 1: every earlier pixel, including those up and to the right.
    model, params = _init(num_layers=3)
    x = jax.random.randint(jax.random.key(1), (4, 4), 0, 4)
    depends = _dependency(model, params, x)
    np.testing.assert_array_equal(depends, np.tril(np.ones((16, 16), bool), k=-1))


def test_too_few_layers_miss_far_pixels_but_stay_causal():
    # Reach 2 < 3: pixel (1, 0) cannot see (0, 3); causality must still hold.
    model, params = _init(num_layers=2)
    depends = _dependency(model, params, jnp.zeros((4, 4), jnp.int32))
    assert not np.any(np.triu(depends))
    assert not depends[4, 3]
    assert depends[4, 1]


def test_probabilities_sum_to_one_over_all_images():
    model, params = _init(num_layers=2, num_levels=3, shape=(2, 2))
    configs = jnp.asarray(list(itertools.product(range(3), repeat=4)), jnp.int32).reshape(-1, 2, 2)
    logp = pixelcnn.log_prob(model, params, configs)
    np.testing.assert_allclose(jax.scipy.special.logsumexp(logp), 0.0, atol=1e-5)
    # [batch, H, W, 1] gives the same numbers as [batch, H, W].
    np.testing.assert_allclose(pixelcnn.log_prob(model, params, configs[..., None]), logp, rtol=1e-6)


def test_sample_frequencies_match_log_prob():
    model, params = _init(num_layers=2, num_levels=2, shape=(2, 2))
    samples = np.asarray(pixelcnn.sample(model, params, jax.random.key(5), 20000, (2, 2)))
    assert samples.shape == (20000, 2, 2)
    configs = jnp.asarray(list(itertools.product(range(2), repeat=4)), jnp.int32).reshape(-1, 2, 2)
    probs = np.exp(pixelcnn.log_prob(model, params, configs))
    freqs = np.bincount(samples.reshape(-1, 4) @ np.array([8, 4, 2, 1]), minlength=16) / len(samples)
    np.testing.assert_allclose(freqs, probs, atol=4 * np.sqrt(0.25 / 20000))


def test_bad_input_raises():
    model, params = _init()
    with pytest.raises(ValueError, match="single-channel"):
        model.apply(params, jnp.zeros((1, 4, 4, 3), jnp.int32))
    with pytest.raises(TypeError, match="integer"):
        pixelcnn.log_prob(model, params, jnp.zeros((1, 4, 4), jnp.float32))
