"""Tests for jgen.autoregressive.wavenet: causality by gradients, cached == naive sampling, normalisation."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.autoregressive import wavenet


def _init(num_pixels, num_levels=4, channels=8, dilations=None, seed=0):
    model = wavenet.WaveNet(num_pixels=num_pixels, num_levels=num_levels, channels=channels,
                            skip_channels=16, dilations=dilations)  # wide enough that no output ReLU row is all dead
    params = model.init(jax.random.key(seed), jnp.zeros((1, num_pixels), jnp.int32))
    return model, params


def _dependency(model, params, x):
    """|d (r_i . logits_i) / d x_j| > 0 as a [T, T] bool matrix (random projections r_i)."""
    r = jax.random.normal(jax.random.key(7), (model.num_pixels, model.num_levels))
    jac = jax.jit(jax.jacrev(lambda x: (model.apply(params, x[None])[0] * r).sum(-1)))(x.astype(jnp.float32))
    return np.abs(np.asarray(jac)) > 0


def test_default_dilations_cover_all_previous_pixels():
    assert wavenet.default_dilations(49) == (1, 2, 4, 8, 16, 32)
    assert wavenet.receptive_field(wavenet.default_dilations(49)) == 64
    assert wavenet.default_dilations(64) == (1, 2, 4, 8, 16, 32)
    assert wavenet.default_dilations(65)[-1] == 64


def test_causality_output_i_depends_exactly_on_inputs_before_i():
    model, params = _init(num_pixels=11)
    x = jax.random.randint(jax.random.key(1), (11,), 0, 4)
    depends = _dependency(model, params, x)
    strictly_lower = np.tril(np.ones((11, 11), bool), k=-1)
    np.testing.assert_array_equal(depends, strictly_lower)


def test_short_receptive_field_misses_distant_pixels():
    # Dilations (1, 2): output t sees y_{t-3}..y_t, i.e. x_{t-4}..x_{t-1}.
    model, params = _init(num_pixels=8, dilations=(1, 2))
    depends = _dependency(model, params, jnp.zeros((8,), jnp.int32))
    t, j = np.indices((8, 8))
    np.testing.assert_array_equal(depends, (j < t) & (j >= t - wavenet.receptive_field((1, 2))))


def test_cached_steps_reproduce_full_forward_logits():
    model, params = _init(num_pixels=13, num_levels=5)
    x = jax.random.randint(jax.random.key(2), (3, 13), 0, 5)
    full = model.apply(params, x)
    step = jax.jit(lambda cache, t, prev: model.apply(params, cache, t, prev, method=wavenet.WaveNet.step))
    cache = model.init_cache(3)
    prev = jnp.zeros((3,), jnp.int32)
    for t in range(13):
        cache, logits = step(cache, t, prev)
        np.testing.assert_allclose(logits, full[:, t], rtol=1e-5, atol=1e-5)
        prev = x[:, t]


@pytest.mark.parametrize("seed", [0, 1])
def test_cached_sampling_gives_exactly_the_naive_pixels(seed):
    model, params = _init(num_pixels=13, num_levels=5, seed=seed)
    key = jax.random.key(10 + seed)
    cached = wavenet.sample(model, params, key, 16, cached=True)
    naive = wavenet.sample(model, params, key, 16, cached=False)
    assert cached.shape == (16, 13) and cached.dtype == jnp.int32
    np.testing.assert_array_equal(cached, naive)
    # A different key gives different pixels, so the equality above is not vacuous.
    assert not np.array_equal(wavenet.sample(model, params, jax.random.key(99), 16), cached)


def test_probabilities_sum_to_one_over_all_sequences():
    model, params = _init(num_pixels=4, num_levels=3)
    configs = jnp.asarray(list(itertools.product(range(3), repeat=4)), jnp.int32)
    logp = wavenet.log_prob(model, params, configs)
    np.testing.assert_allclose(jax.scipy.special.logsumexp(logp), 0.0, atol=1e-5)


def test_sample_frequencies_match_log_prob():
    model, params = _init(num_pixels=2, num_levels=3)
    samples = np.asarray(wavenet.sample(model, params, jax.random.key(5), 20000))
    configs = jnp.asarray(list(itertools.product(range(3), repeat=2)), jnp.int32)
    probs = np.exp(wavenet.log_prob(model, params, configs))
    freqs = np.bincount(samples @ np.array([3, 1]), minlength=9) / len(samples)
    np.testing.assert_allclose(freqs, probs, atol=4 * np.sqrt(0.25 / 20000))


def test_quantize_levels():
    x = jnp.array([0, 63, 64, 127, 128, 255], jnp.uint8)
    np.testing.assert_array_equal(wavenet.quantize(x, 4), [0, 0, 1, 1, 2, 3])
    np.testing.assert_array_equal(wavenet.quantize(x, 256), x.astype(jnp.int32))
    with pytest.raises(ValueError, match="num_levels"):
        wavenet.quantize(x, 1)


def test_bad_input_raises():
    model, params = _init(num_pixels=5)
    with pytest.raises(ValueError, match=r"\[batch, 5\]"):
        model.apply(params, jnp.zeros((2, 6), jnp.int32))
    with pytest.raises(TypeError, match="integer"):
        wavenet.log_prob(model, params, jnp.zeros((2, 5), jnp.float32))
