"""Training a VAE on the negative ELBO with `jgen.train.fit_loss`, and evaluating its ELBO in batches.

    params = training.init_params(model, config.model, key, x[:1])     # a learned scale starts at gaussian_scale
    loss_fn = training.elbo_loss(model, prepare=training.scale_uint8)   # batch["image"] uint8 -> [0, 1]
    result = jgen.train.fit_loss(loss_fn, params, tx, batches, num_steps, key=key)
    parts = training.elbo_in_batches(model, result.params, x, key, batch_size=500)   # Elbo of [N] arrays

The loss logs its two parts beside the total (`loss` = neg ELBO = `recon` + `kl`, nats per example), so the
curves of a fit show reconstruction, KL and total separately.
"""

from __future__ import annotations

from typing import Any, Callable

import math

import jax
import jax.numpy as jnp

from jgen.batching import map_batches
from jgen.vae import bounds
from jgen.vae.model import VAE, elbo

__all__ = ["init_params", "scale_uint8", "elbo_loss", "elbo_fn", "elbo_in_batches"]

Prepare = Callable[[jax.Array, jax.Array], jax.Array]


def init_params(model: VAE, cfg: Any, key: jax.Array, x: jax.Array) -> Any:
    """Initial parameters of `make_vae(cfg)` for example inputs x [1+, H, W, C]; a learned Gaussian scale
    (`learn_scale=True`) starts at `cfg.gaussian_scale` instead of 1.

    On data in [0, 1], sigma = 1 makes the likelihood so flat that the KL dominates the loss until the scale
    has been learned (thousands of steps: Adam moves log sigma by about the learning rate per step), i.e. a
    beta-VAE with a large beta, whose posterior carries little about x.
    """
    params = jax.jit(model.init)(key, jnp.asarray(x), key)
    if cfg.likelihood == "gaussian" and cfg.learn_scale:
        decoder = params["params"]["decoder"]
        decoder = {**decoder, "log_scale": jnp.full_like(decoder["log_scale"], math.log(cfg.gaussian_scale))}
        params = {**params, "params": {**params["params"], "decoder": decoder}}
    return params


def scale_uint8(key: jax.Array, images: jax.Array) -> jax.Array:
    """8-bit images -> float32 intensities in [0, 1] (a `prepare` that ignores its key)."""
    del key
    return jnp.asarray(images, jnp.float32) / 255.0


def elbo_loss(model: VAE, prepare: Prepare | None = None, *, image_key: str = "image"):
    """`loss_fn(params, batch, key) -> (neg ELBO, {"recon", "kl"})` for `jgen.train.fit_loss`.

    Args:
      model: a `jgen.vae.VAE`.
      prepare: `prepare(key, batch[image_key]) -> x` on the likelihood's scale (e.g. dynamic binarisation
        with a fresh key every step, or `scale_uint8`); None: the batch is used as it is.
      image_key: the batch entry holding the images.

    Returns:
      The loss function: the batch mean of -ELBO (closed-form KL, one reparameterised sample), with the
      batch means of -log p(x | z) (`recon`) and KL(q(z | x) || p(z)) (`kl`) as aux, all in nats.
    """
    def loss_fn(params: Any, batch: dict, key: jax.Array):
        data_key, noise_key = jax.random.split(key)
        x = batch[image_key] if prepare is None else prepare(data_key, batch[image_key])
        parts = elbo(model, params, noise_key, x)
        return -jnp.mean(parts.elbo), {"recon": -jnp.mean(parts.recon), "kl": jnp.mean(parts.kl)}

    return loss_fn


_ELBO_FNS: dict = {}


def elbo_fn(model: VAE):
    """One jitted `(params, x, key) -> Elbo` per model (cached, so repeated evaluations reuse one compilation)."""
    if model not in _ELBO_FNS:
        _ELBO_FNS[model] = jax.jit(lambda p, x, k: elbo(model, p, k, x))
    return _ELBO_FNS[model]


def elbo_in_batches(model: VAE, params: Any, x: Any, key: jax.Array, *, batch_size: int = 500) -> bounds.Elbo:
    """`Elbo` ([N] nats each) of every example of `x` [N, ...] (on the likelihood's scale), in fixed-size
    batches (`jgen.batching.map_batches`: one compilation for any N); every batch uses the same `key`."""
    parts = elbo_fn(model)
    return bounds.Elbo(*map_batches(lambda b: tuple(parts(params, b, key)), x, batch_size))
