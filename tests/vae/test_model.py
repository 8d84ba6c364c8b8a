"""The conv VAE: the layer table's shapes and parameter counts are the model's, and the VAE wrappers of the
bounds agree with each other."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen import vae

CONFIGS = {
    "bernoulli_transpose": vae.vae_config(image_shape=(8, 8, 1), latent_dim=3, channels=(4, 6), kernels=(3, 4)),
    "gaussian_learned_resize_hidden": vae.vae_config(image_shape=(8, 8, 3), latent_dim=5, channels=(4, 6),
                                                     kernels=(3, 3), hidden=7, upsample="resize",
                                                     likelihood="gaussian", learn_scale=True),
    "logistic_stride1": vae.vae_config(image_shape=(7, 7, 1), latent_dim=2, channels=(4,), kernels=(3,),
                                       strides=(1,), likelihood="logistic"),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_layer_table_counts_and_shapes_are_the_models(name):
    cfg = CONFIGS[name]
    model = vae.make_vae(cfg)
    x = jnp.zeros((2, *cfg.image_shape))
    key = jax.random.key(0)
    # Shapes only: jax.eval_shape traces without compiling.
    params = jax.eval_shape(model.init, key, x, key)
    rows = vae.layer_table(cfg)
    _, state = jax.eval_shape(lambda p: model.apply(p, x, key, capture_intermediates=True), params)
    inter = state["intermediates"]
    for row in rows:
        if "/" not in row["layer"]:
            continue
        part, layer = row["layer"].split("/")
        if layer == "log_scale":
            assert params["params"][part][layer].size == row["params"]
            continue
        assert vae.num_params(params["params"][part][layer]) == row["params"], row
        shape = inter[part][layer]["__call__"][0].shape[1:]
        if row["kind"].startswith("dense"):  # reshaped after the layer: compare sizes
            assert np.prod(shape) == np.prod([int(s) for s in row["output"].split("x")]), (row, shape)
        else:
            assert "x".join(map(str, shape)) == row["output"], (row, shape)
    assert rows[-1]["params"] == vae.num_params(params)
    out = jax.eval_shape(lambda p: model.apply(p, jnp.zeros((2, cfg.latent_dim)), method="decode"), params)
    assert out.shape == (2, *cfg.image_shape[:2], model.likelihood.out_channels(cfg.image_shape[2]))
    table = vae.markdown_table(rows)
    assert table.count("\n") == len(rows) + 1 and f"latent dimension {cfg.latent_dim}" in table


def test_vae_iwae_with_one_sample_equals_its_sample_elbo():
    cfg = CONFIGS["bernoulli_transpose"]
    model = vae.make_vae(cfg)
    key = jax.random.key(1)
    x = jax.random.bernoulli(key, 0.3, (4, *cfg.image_shape)).astype(jnp.float32)
    params = jax.jit(model.init)(key, x, key)
    run = jax.jit(lambda p, k: (vae.elbo(model, p, k, x, analytic_kl=False).elbo, vae.iwae_bound(model, p, k, x, 1),
                                vae.elbo(model, p, k, x)))
    sample, iwae1, parts = run(params, jax.random.key(2))
    np.testing.assert_allclose(iwae1, sample, rtol=1e-5)
    assert np.all(np.asarray(parts.kl) >= 0) and np.all(np.asarray(parts.recon) < 0)
    np.testing.assert_allclose(parts.elbo, parts.recon - parts.kl, rtol=1e-6)


def test_bad_architecture_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="strides"):
        vae.make_vae(vae.vae_config(image_shape=(7, 7, 1), strides=(2, 2)))
    with pytest.raises(ValueError, match="likelihood"):
        vae.make_vae(vae.vae_config(likelihood="poisson"))
