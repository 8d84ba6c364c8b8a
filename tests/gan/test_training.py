"""StyleGAN2 training step through `jgen.train.fit`: both players move, lazy R1 runs on its steps only, G_ema
and w_avg track, augmentation is what it says (one tiny run, 8 px; fit's exact resume of a two-player step is
tests/test_train_custom_step.py's)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen import train
from jgen.data import BatchIterator
from jgen.gan import stylegan2 as sg, training

G_CONFIG = sg.stylegan2_config(resolution=8, img_channels=1, z_dim=4, w_dim=4, mapping_layers=1, channel_base=32,
                               channel_max=4)
CONFIG = training.training_config(batch_size=4, r1_every=2, r1_gamma=1.0, ema_kimg=0.01, style_mixing_prob=0.5)
STEPS = 6


def batches():
    x = np.random.default_rng(0).uniform(-1, 1, size=(16, 8, 8, 1)).astype(np.float32)
    return BatchIterator({"x": x}, CONFIG.batch_size, seed=0)


@pytest.fixture(scope="module")
def step():
    return training.make_step(G_CONFIG, CONFIG, STEPS)


def test_training_moves_both_players_and_regularises_lazily(step):
    init = training.create_state(G_CONFIG, CONFIG, jax.random.PRNGKey(0), STEPS)
    g0, d0 = jax.tree.map(np.array, init.params), jax.tree.map(np.array, init.extra["d"])
    res = train.fit(step, init, batches(), STEPS, fuse_steps=2, log_every=2, progress=False)  # one compilation
    assert int(res.state.step) == STEPS and [r["step"] for r in res.history] == [2, 4, 6]
    assert {"loss_d", "loss_g", "r1", "d_real", "d_fake"} == set(res.history[0]) - {"step"}
    # Lazy R1 (every 2nd step): each logged pair of steps holds one penalty evaluation, averaged with a 0.
    assert all(r["r1"] > 0 for r in res.history)
    fc = lambda p: p["mapping_network"]["fc0"]["weight"]  # noqa: E731
    assert not np.allclose(fc(res.state.params), fc(g0))
    assert not np.allclose(res.state.extra["d"]["b4_out"]["weight"], d0["b4_out"]["weight"])
    assert not np.allclose(fc(res.state.ema_params), fc(res.state.params))  # the EMA lags G
    assert np.all(np.asarray(res.state.extra["w_avg"]) != 0.0)


def test_augment_flips_and_translates_with_zero_fill():
    x = jnp.arange(2 * 8 * 8, dtype=jnp.float32).reshape(2, 8, 8, 1) + 1.0
    key = jax.random.PRNGKey(3)
    flipped = np.asarray(training.augment(key, x, xflip=True, translate=0.0))
    for a, b in zip(flipped, np.asarray(x)):
        assert np.array_equal(a, b) or np.array_equal(a, b[:, ::-1])
    shifted = np.asarray(training.augment(key, x, xflip=False, translate=0.25))
    for a, b in zip(shifted, np.asarray(x)):
        kept = a[a != 0]  # zero fill marks the pixels shifted in
        assert kept.size >= 4 * 4 and np.all(np.isin(kept, b))
        rows = [i for i in range(8) if np.any(a[i] != 0)]
        assert np.all(np.diff(a[rows[0], a[rows[0], :, 0] != 0, 0]) == 1)  # a row stays a contiguous run


def test_ema_half_life_and_ramp_up():
    c = training.training_config(batch_size=16, ema_kimg=1.6, ema_rampup=0.0)
    np.testing.assert_allclose(float(training.ema_beta(c, jnp.asarray(5))) ** 100, 0.5, rtol=1e-5)
    ramp = training.training_config(batch_size=16, ema_kimg=1.6, ema_rampup=0.05)
    assert float(training.ema_beta(ramp, jnp.asarray(0))) < float(training.ema_beta(ramp, jnp.asarray(10_000)))
