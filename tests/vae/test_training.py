"""The VAE training helpers: the loss is the negative ELBO with its parts, batched evaluation equals one
call, and a learned Gaussian scale starts where the config says."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from jgen import vae
from jgen.vae import training


def test_loss_parts_batched_elbo_and_initial_scale():
    cfg = vae.vae_config(image_shape=(8, 8, 1), latent_dim=3, channels=(4,), kernels=(3,), strides=(2,),
                         likelihood="gaussian", learn_scale=True, gaussian_scale=0.2)
    model = vae.make_vae(cfg)
    images = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 1)).astype(np.uint8)
    params = training.init_params(model, cfg, jax.random.key(0), images[:1] / 255.0)
    np.testing.assert_allclose(params["params"]["decoder"]["log_scale"], [math.log(0.2)], rtol=1e-6)
    key = jax.random.key(1)
    loss, aux = training.elbo_loss(model, training.scale_uint8)(params, {"image": jnp.asarray(images)}, key)
    np.testing.assert_allclose(loss, aux["recon"] + aux["kl"], rtol=1e-5)
    x = images / 255.0
    direct = vae.elbo(model, params, jax.random.split(key)[1], jnp.asarray(x, jnp.float32))  # the loss's noise key
    np.testing.assert_allclose(loss, -direct.elbo.mean(), rtol=1e-5)
    batched = training.elbo_in_batches(model, params, x, key, batch_size=4)  # 3 batches, the last padded
    one = vae.elbo(model, params, key, jnp.asarray(x[:4], jnp.float32))
    assert batched.elbo.shape == (10,)
    np.testing.assert_allclose(batched.kl[:4], one.kl, rtol=1e-5)  # KL is noise-free: same posterior
    np.testing.assert_allclose(batched.elbo[:4], one.elbo, rtol=1e-5)
