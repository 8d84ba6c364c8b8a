"""jgen.gan.invert on a tiny random StyleGAN2 (8 px): known-w+ recovery, latent shapes per space, shared hparams."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.gan import invert as inv, stylegan2 as sg

CFG = sg.stylegan2_config(resolution=8, img_channels=1, z_dim=8, w_dim=8, mapping_layers=2, channel_base=32,
                          channel_max=8)
N = sg.num_ws(8)


@pytest.fixture(scope="module")
def gen():
    params = sg.init_params(CFG, jax.random.PRNGKey(0))
    G = sg.Generator(CFG)
    mapping = jax.jit(lambda p, z: G.apply({"params": p}, z, method=G.mapping))
    synth = jax.jit(lambda p, ws: G.apply({"params": p}, ws, method=G.synthesis))
    w_avg = jnp.mean(mapping(params, jax.random.normal(jax.random.PRNGKey(1), (500, CFG.z_dim))), 0)
    return params, w_avg, mapping, synth


def test_known_wplus_is_recovered_and_spaces_have_their_shapes(gen):
    params, w_avg, mapping, synth = gen
    ws_true = jnp.broadcast_to(w_avg, (3, N, CFG.w_dim)) + 0.5 * jax.random.normal(jax.random.PRNGKey(2),
                                                                                 (3, N, CFG.w_dim))
    targets = synth(params, ws_true)
    start = synth(params, jnp.broadcast_to(w_avg, ws_true.shape))
    start_l2 = np.sqrt(np.mean(np.square(np.asarray(start - targets)), axis=(1, 2, 3)))
    c = inv.invert_config(space="wplus", loss="mse", num_steps=300, feature_size=32, z_init_draws=64)
    r = inv.invert(CFG, params, targets, c, w_avg=w_avg, progress_bar=False)
    assert r.latents.shape == (3, N, CFG.w_dim) and r.ws.shape == (3, N, CFG.w_dim)
    assert r.images.shape == targets.shape and r.losses.shape == (300,)
    # From w_avg to the known codes: the pixel error shrinks five-fold, to a few percent of the range.
    assert np.all(r.l2 < start_l2 / 5) and np.mean(r.l2) < 0.05, (r.l2, start_l2)
    assert r.losses[-1] < 0.01 * r.losses[0]
    np.testing.assert_allclose(r.l2, np.sqrt(np.mean(np.square(r.images - np.asarray(targets)), (1, 2, 3))),
                               rtol=1e-5)
    assert np.all(r.lpips < 0.05) and np.all(r.cosine < 0.05)

    shapes = {"z": (3, CFG.z_dim), "w": (3, CFG.w_dim)}
    hparams = [r.hparams]
    for space, shape in shapes.items():
        c = inv.invert_config(space=space, loss="mse", num_steps=300, feature_size=32, z_init_draws=64)
        c.num_steps = 3  # shapes only; the hparams record the shared block (num_steps aside)
        rs = inv.invert(CFG, params, targets, c, w_avg=w_avg, progress_bar=False)
        assert rs.latents.shape == shape and rs.ws.shape == (3, N, CFG.w_dim)
        if space == "w":  # every layer gets the same w
            np.testing.assert_array_equal(rs.ws, np.broadcast_to(rs.latents[:, None], rs.ws.shape))
        hparams.append({**rs.hparams, "num_steps": 300})
    assert hparams[0] == hparams[1] == hparams[2]
    assert hparams[0]["learning_rate"] == 0.01 and hparams[0]["optimizer"] == "adam"


def test_combined_loss_and_z_start(gen):
    params, w_avg, mapping, synth = gen
    z0 = inv.initial_latent(CFG, params, w_avg, 2, "z", z_init_draws=64)
    assert z0.shape == (2, CFG.z_dim)
    # z's start maps nearer to w_avg than a typical draw does.
    draws = mapping(params, jax.random.normal(jax.random.PRNGKey(5), (64, CFG.z_dim)))
    assert float(jnp.sum((mapping(params, z0[:1]) - w_avg) ** 2)) <= float(jnp.min(jnp.sum((draws - w_avg) ** 2, -1)))
    targets = synth(params, jnp.broadcast_to(w_avg, (2, N, CFG.w_dim)) + 0.3)
    c = inv.invert_config(space="wplus", loss="combined", num_steps=4, feature_size=32, chunk=2)
    r = inv.invert(CFG, params, targets, c, w_avg=w_avg, progress_bar=False)
    assert r.hparams["lpips_weight"] == 1.0 and r.hparams["cosine_weight"] == 0.5 and r.losses.shape == (4,)
    d = inv.distances(targets, targets, feature_size=32)
    np.testing.assert_allclose(d["l2"], 0.0, atol=1e-7)
    np.testing.assert_allclose(d["lpips"], 0.0, atol=1e-6)
    np.testing.assert_allclose(d["cosine"], 0.0, atol=1e-6)


def test_crossover_takes_the_halves_it_says():
    a, b = jnp.zeros((2, 6, 4)), jnp.ones((2, 6, 4))
    split_a, split_b = inv.crossover(a, b)
    np.testing.assert_array_equal(split_a[:, :3], 0.0)
    np.testing.assert_array_equal(split_a[:, 3:], 1.0)
    np.testing.assert_array_equal(split_b[:, :3], 1.0)
    np.testing.assert_array_equal(split_b[:, 3:], 0.0)


def test_bad_config_and_targets_are_rejected(gen):
    with pytest.raises(ValueError, match="space='x'"):
        inv.invert_config(space="x")
    with pytest.raises(ValueError, match="loss="):
        inv.invert_config(loss="l1")
    params, w_avg, _, _ = gen
    with pytest.raises(ValueError, match=r"targets must be \[batch, 8, 8, 1\]"):
        inv.invert(CFG, params, np.zeros((2, 16, 16, 1)), inv.invert_config(), w_avg=w_avg)
