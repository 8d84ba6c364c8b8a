"""Tests for jgen.autoregressive.lstm: teacher forcing == sequential steps, normalisation, sampler, learning."""

import itertools

import jax
import jax.numpy as jnp
import functools

import numpy as np
import optax
import pytest

from jgen import optim
from jgen.autoregressive import lstm


@functools.cache
def _init(hidden=8, layers=2, shape=(2, 3, 3), seed=0):
    """A small model and its parameters, built once per argument set for the whole module."""
    model = lstm.PixelLSTM(hidden_size=hidden, num_layers=layers)
    params = model.init(jax.random.key(seed), jnp.zeros(shape, jnp.int32))
    return model, params


def _all_binary(num_pixels):
    return jnp.asarray(list(itertools.product([0, 1], repeat=num_pixels)), jnp.int32)


def test_teacher_forcing_equals_sequential_steps():
    model, params = _init()
    x = jax.random.bernoulli(jax.random.key(1), 0.5, (5, 3, 3)).astype(jnp.int32)

    @jax.jit
    def sequential(flat):
        """One `PixelLSTM.step` per pixel, each fed the previous true pixel (one compiled scan)."""

        def body(state, x_i):
            carry, prev = state
            carry, logit = model.apply(params, carry, prev, method=lstm.PixelLSTM.step)
            p1 = jax.nn.sigmoid(logit)
            return (carry, x_i), jnp.log(jnp.where(x_i == 1, p1, 1.0 - p1))

        start = (model.apply(params, flat.shape[0], method=lstm.PixelLSTM.initial_carry),
                 jnp.full((flat.shape[0],), lstm.START_TOKEN, jnp.int32))
        return jax.lax.scan(body, start, flat.T)[1].sum(axis=0)

    np.testing.assert_allclose(lstm.log_prob(model, params, x), sequential(x.reshape(5, -1)), rtol=1e-5,
                               atol=1e-5)


def test_probabilities_sum_to_one_over_all_images():
    model, params = _init(shape=(1, 6))
    logp = lstm.log_prob(model, params, _all_binary(6))
    np.testing.assert_allclose(jax.scipy.special.logsumexp(logp), 0.0, atol=1e-5)


def test_logit_i_does_not_depend_on_pixels_at_or_after_i():
    model, params = _init(shape=(1, 6))
    apply = jax.jit(model.apply)
    base = jnp.zeros((1, 6), jnp.int32)
    logits = apply(params, base)[0]
    for j in range(6):
        changed = apply(params, base.at[0, j].set(1))[0]
        np.testing.assert_array_equal(changed[: j + 1], logits[: j + 1])
        assert np.all(changed[j + 1:] != logits[j + 1:])


def test_sample_frequencies_match_log_prob():
    model, params = _init(shape=(1, 3))
    samples = lstm.sample(model, params, jax.random.key(3), 20000, 3)
    assert samples.shape == (20000, 3) and set(np.unique(samples)) <= {0, 1}
    configs = _all_binary(3)
    probs = np.exp(lstm.log_prob(model, params, configs))
    codes = np.asarray(samples) @ np.array([4, 2, 1])
    freqs = np.bincount(codes, minlength=8) / len(codes)
    np.testing.assert_allclose(freqs, probs, atol=4 * np.sqrt(0.25 / 20000))


def test_learns_dependency_between_pixels():
    # All four pixels copy one fair coin: optimal NLL is log 2, an independent model gets 4 log 2.
    model, params = _init(hidden=8, layers=1, shape=(1, 4))
    coins = jax.random.bernoulli(jax.random.key(4), 0.5, (256, 1)).astype(jnp.int32)
    data = jnp.repeat(coins, 4, axis=1)
    tx = optim.make_optimizer(optim.optim_config(name="adam", learning_rate=3e-2), 150)

    @jax.jit
    def train(params):
        def update(carry, _):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(lambda p: -lstm.log_prob(model, p, data).mean())(params)
            updates, opt_state = tx.update(grads, opt_state)
            return (optax.apply_updates(params, updates), opt_state), loss

        return jax.lax.scan(update, (params, tx.init(params)), None, length=150)[1]

    losses = train(params)
    assert float(losses[-1]) < np.log(2) + 0.05


def test_bad_input_raises():
    model, params = _init()
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        lstm.log_prob(model, params, jnp.zeros((9,), jnp.int32))
    with pytest.raises(ValueError, match="hidden_size"):
        lstm.PixelLSTM(hidden_size=0).init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))
