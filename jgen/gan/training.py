"""StyleGAN2 training as one `jgen.train.fit` step: non-saturating loss, lazy R1, EMA generator, tracked w_avg.

    config = training_config()                                  # the `gan` block of an experiment
    state = create_state(g_config, config, key, num_steps)      # G in the state proper, D in state.extra
    step = make_step(g_config, config, num_steps)
    result = jgen.train.fit(step, state, BatchIterator({"x": x}, config.batch_size, seed=0), num_steps, wd=wd)
    g_ema, w_avg = result.state.ema_params, result.state.extra["w_avg"]

One step (Karras et al. 2020, the schedule of stylegan2-ada-pytorch's `training_loop` with both phases in one
call):

1. D phase: fake = G(z) (z ~ N(0, I), style mixing with probability `style_mixing_prob`, random noise);
   L_D = softplus(D(fake)) + softplus(-D(real)) (non-saturating logistic loss). Every `r1_every` steps the
   lazy R1 penalty (gamma / 2) |grad_x D(x_real)|^2 * r1_every is added (Mescheder et al. 2018); between
   them the penalty is skipped by a `lax.cond`, so those steps pay nothing for it.
2. G phase (against the updated D), fresh z: L_G = softplus(-D(G(z))).
3. The tracked average latent w_avg <- lerp(mean w, w_avg, w_avg_beta) in `state.extra["w_avg"]`, and the EMA
   generator `state.ema_params` with the official half-life: beta = 0.5^(B / n_ema), n_ema =
   min(1000 ema_kimg, ema_rampup * images seen).

Augmentation (applied to every image D sees, real and fake, in both phases, so D never learns it is there:
DiffAugment, Zhao et al. 2020): `xflip` mirrors each image with probability 1/2; `translate` shifts by a random
integer number of pixels up to `translate` * R in x and y, with zero fill. Path-length regularisation is not
implemented (it matters for the smoothness of W at high resolution, little at 64 px).

State: `params` / `opt_state` = G and its optimizer, `ema_params` = G_ema, `extra` = {"d", "d_opt", "w_avg"}.
Metrics: loss_d, loss_g, r1 (the last penalty computed, before its weight), d_real, d_fake (mean logits).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jgen import optim, train
from jgen.gan import stylegan2 as sg

__all__ = ["training_config", "check_training_config", "discriminator", "augment", "create_state", "make_step",
           "ema_beta", "generate", "sample_metrics", "to_uint8"]


def training_config(*, batch_size: int = 16, r1_gamma: float = 0.2, r1_every: int = 16,
                    style_mixing_prob: float = 0.9, ema_kimg: float = 2.5, ema_rampup: float = 0.05,
                    xflip: bool = True, translate: float = 0.125, d_channel_base: int | None = None,
                    d_channel_max: int | None = None, mbstd_group: int = 4,
                    learning_rate: float = 0.0025) -> ml_collections.ConfigDict:
    """The training block (`config.gan` of an experiment). Adam(b1 = 0, b2 = 0.99, eps 1e-8) for both players.

    Args:
      batch_size: images per phase.
      r1_gamma: R1 weight gamma (official heuristic 0.0002 R^2 / B; small data sets want more).
      r1_every: lazy regularisation interval (16); the D optimizer's lr and betas are scaled by
        c = k / (k + 1) as in the official code (lr c, b2^c).
      style_mixing_prob: probability of a two-latent sample with a random crossover layer.
      ema_kimg, ema_rampup: half-life of G_ema in thousands of images, and its ramp-up fraction.
      xflip, translate: augmentations (see the module docstring); translate is a fraction of the side.
      d_channel_base, d_channel_max: discriminator widths (None: the generator's).
      mbstd_group: minibatch-std group size.
      learning_rate: Adam learning rate of both players (0.0025 official).
    """
    c = ml_collections.ConfigDict()
    c.batch_size, c.r1_gamma, c.r1_every = int(batch_size), float(r1_gamma), int(r1_every)
    c.style_mixing_prob, c.ema_kimg, c.ema_rampup = float(style_mixing_prob), float(ema_kimg), float(ema_rampup)
    c.xflip, c.translate, c.mbstd_group = bool(xflip), float(translate), int(mbstd_group)
    c.d_channel_base = d_channel_base
    c.d_channel_max = d_channel_max
    c.g_optim = optim.optim_config(name="adam", learning_rate=learning_rate, b1=0.0, b2=0.99, eps=1e-8)
    r = r1_every / (r1_every + 1)
    c.d_optim = optim.optim_config(name="adam", learning_rate=learning_rate * r, b1=0.0, b2=0.99 ** r, eps=1e-8)
    return c


def check_training_config(c: ml_collections.ConfigDict) -> None:
    """ValueError naming the bad field of a `training_config`."""
    if c.batch_size < 1 or c.batch_size % min(c.mbstd_group, c.batch_size):
        raise ValueError(f"batch_size={c.batch_size} must be a positive multiple of mbstd_group={c.mbstd_group}")
    if c.r1_every < 1:
        raise ValueError(f"r1_every={c.r1_every} must be a whole number of steps >= 1")
    if c.r1_gamma < 0:
        raise ValueError(f"r1_gamma={c.r1_gamma} must be >= 0")
    if not 0 <= c.style_mixing_prob <= 1:
        raise ValueError(f"style_mixing_prob={c.style_mixing_prob} must be a probability in [0, 1]")
    if not 0 <= c.translate < 0.5:
        raise ValueError(f"translate={c.translate} must be a fraction of the image side in [0, 0.5)")
    if c.ema_kimg < 0 or c.ema_rampup < 0:
        raise ValueError("ema_kimg and ema_rampup must be >= 0")


def discriminator(g_config: ml_collections.ConfigDict, c: ml_collections.ConfigDict) -> sg.Discriminator:
    """The discriminator of a run: the generator's resolution, the training block's widths."""
    return sg.Discriminator(g_config.resolution,
                            g_config.channel_base if c.d_channel_base is None else c.d_channel_base,
                            g_config.channel_max if c.d_channel_max is None else c.d_channel_max, c.mbstd_group)


def augment(key: jax.Array, x: jax.Array, *, xflip: bool, translate: float) -> jax.Array:
    """Random x-flip (p = 1/2 per image) and integer translation (zero fill) of x [B, H, W, C]; differentiable."""
    b, h, w, _ = x.shape
    k_flip, k_shift = jax.random.split(key)
    if xflip:
        flip = jax.random.bernoulli(k_flip, 0.5, (b, 1, 1, 1))
        x = jnp.where(flip, x[:, :, ::-1], x)
    m = int(round(translate * h))
    if m > 0:
        shifts = jax.random.randint(k_shift, (b, 2), 0, 2 * m + 1)
        padded = jnp.pad(x, ((0, 0), (m, m), (m, m), (0, 0)))
        x = jax.vmap(lambda im, s: jax.lax.dynamic_slice(im, (s[0], s[1], 0), (h, w, im.shape[-1])))(padded, shifts)
    return x


def ema_beta(c: ml_collections.ConfigDict, step: jax.Array) -> jax.Array:
    """G_ema decay at `step`: 0.5^(B / n) with n = min(1000 ema_kimg, ema_rampup * images seen)."""
    n_ema = 1000.0 * c.ema_kimg
    if c.ema_rampup > 0:
        n_ema = jnp.minimum(n_ema, c.ema_rampup * (step + 1).astype(jnp.float32) * c.batch_size)
    return 0.5 ** (c.batch_size / jnp.maximum(n_ema, 1e-8))


def create_state(g_config: ml_collections.ConfigDict, c: ml_collections.ConfigDict, key: jax.Array,
                 num_steps: int) -> train.TrainState:
    """Fresh G (with EMA) and D with their Adam states; `extra` = {"d", "d_opt", "w_avg" (zeros [w_dim])}."""
    check_training_config(c)
    k_g, k_d, k_state = jax.random.split(key, 3)
    g = sg.init_params(g_config, k_g)
    d = sg.init_discriminator(discriminator(g_config, c), g_config.img_channels, k_d)
    tx_d = optim.make_optimizer(c.d_optim, num_steps)
    return train.create_train_state(g, optim.make_optimizer(c.g_optim, num_steps), k_state, ema=True,
                                    extra={"d": d, "d_opt": tx_d.init(d), "w_avg": jnp.zeros(g_config.w_dim)})


def _sample_ws(G: sg.Generator, g_params: Any, key: jax.Array, batch: int, g_config, mixing_prob: float):
    """ws [B, num_ws, w_dim] of fresh z (with style mixing) and the first latent's w [B, w_dim]."""
    n = sg.num_ws(g_config.resolution)
    k1, k2, k_cut, k_mix = jax.random.split(key, 4)
    z = jax.random.normal(k1, (2 * batch, g_config.z_dim))
    w = G.apply({"params": g_params}, z, method=G.mapping)
    ws1, ws2 = sg.broadcast_ws(w[:batch], n), sg.broadcast_ws(w[batch:], n)
    cutoff = jax.random.randint(k_cut, (batch, 1, 1), 1, n)
    cutoff = jnp.where(jax.random.uniform(k_mix, (batch, 1, 1)) < mixing_prob, cutoff, n)
    return jnp.where(jnp.arange(n)[None, :, None] < cutoff, ws1, ws2), w[:batch]


def make_step(g_config: ml_collections.ConfigDict, c: ml_collections.ConfigDict, num_steps: int):
    """The unjitted `step(state, batch) -> (state, metrics)`; batch {"x": float [B, R, R, K] in [-1, 1]}."""
    check_training_config(c)
    G, D = sg.Generator(g_config), discriminator(g_config, c)
    tx_g, tx_d = optim.make_optimizer(c.g_optim, num_steps), optim.make_optimizer(c.d_optim, num_steps)
    aug = lambda k, x: augment(k, x, xflip=c.xflip, translate=c.translate)  # noqa: E731

    def fake_images(g_params, key, batch):
        k_ws, k_noise = jax.random.split(key)
        ws, w = _sample_ws(G, g_params, k_ws, batch, g_config, c.style_mixing_prob)
        return G.apply({"params": g_params}, ws, noise_mode="random", key=k_noise, method=G.synthesis), w

    def step(state: train.TrainState, batch):
        real = batch["x"] if isinstance(batch, dict) else batch
        b = real.shape[0]
        key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
        k_fd, k_ad, k_ar, k_r1, k_fg, k_ag = jax.random.split(key, 6)
        d, d_opt, w_avg = state.extra["d"], state.extra["d_opt"], state.extra["w_avg"]

        # D phase.
        fake, _ = fake_images(jax.lax.stop_gradient(state.params), k_fd, b)
        real_aug = aug(k_ar, real)

        def d_main(d):
            # Separate calls: minibatch-std groups must hold real or fake images, never both.
            lr = D.apply({"params": d}, real_aug)
            lf = D.apply({"params": d}, aug(k_ad, fake))
            loss = jnp.mean(jax.nn.softplus(-lr)) + jnp.mean(jax.nn.softplus(lf))
            return loss, (jnp.mean(lr), jnp.mean(lf))

        (loss_d, (d_real, d_fake)), grads = jax.value_and_grad(d_main, has_aux=True)(d)

        def r1_grads(d):
            def penalty(d):
                g = jax.grad(lambda x: jnp.sum(D.apply({"params": d}, aug(k_r1, x))))(real)
                r1 = jnp.mean(jnp.sum(jnp.square(g), (1, 2, 3)))
                return 0.5 * c.r1_gamma * c.r1_every * r1, r1

            (_, r1), gr = jax.value_and_grad(penalty, has_aux=True)(d)
            return gr, r1

        def no_r1(d):
            return jax.tree.map(jnp.zeros_like, d), jnp.zeros(())

        if c.r1_gamma > 0:
            gr, r1 = jax.lax.cond(state.step % c.r1_every == 0, r1_grads, no_r1, d)
            grads = jax.tree.map(jnp.add, grads, gr)
        else:
            r1 = jnp.zeros(())
        updates, d_opt = tx_d.update(grads, d_opt, d)
        d = optax.apply_updates(d, updates)

        # G phase against the new D.
        def g_loss(g):
            fake, w = fake_images(g, k_fg, b)
            return jnp.mean(jax.nn.softplus(-D.apply({"params": d}, aug(k_ag, fake)))), w

        (loss_g, w), grads = jax.value_and_grad(g_loss, has_aux=True)(state.params)
        updates, g_opt = tx_g.update(grads, state.opt_state, state.params)
        g = optax.apply_updates(state.params, updates)
        beta = ema_beta(c, state.step)
        ema = jax.tree.map(lambda e, p: p + beta * (e - p), state.ema_params, g)
        w_avg = sg.update_w_avg(w_avg, jax.lax.stop_gradient(w), g_config.w_avg_beta)
        metrics = {"loss_d": loss_d, "loss_g": loss_g, "r1": r1, "d_real": d_real, "d_fake": d_fake}
        return state.replace(step=state.step + 1, params=g, opt_state=g_opt, ema_params=ema,
                             extra={"d": d, "d_opt": d_opt, "w_avg": w_avg}), metrics

    return step


def generate(g_config: ml_collections.ConfigDict, params: Any, z: jax.Array, *, truncation_psi: float = 1.0,
             w_avg: jax.Array | None = None, noise_mode: str = "const", key: jax.Array | None = None,
             chunk: int = 64) -> jax.Array:
    """Images [N, R, R, K] (numpy) in about [-1, 1] of latents z [N, z_dim], `chunk` at a time (one compilation).

    With noise_mode="random" every chunk reuses `key` (the same noise images per position in a chunk).
    """
    from jgen.batching import map_batches

    G = sg.Generator(g_config)
    fn = jax.jit(lambda zb, p, w_avg, key: G.apply({"params": p}, zb, truncation_psi=truncation_psi, w_avg=w_avg,
                                                   noise_mode=noise_mode, key=key))
    return map_batches(fn, z, chunk, params, w_avg, key)


def sample_metrics(g_config: ml_collections.ConfigDict, params: Any, dataset: str, *, num_samples: int,
                   seed: int = 0, truncation_psi: float = 1.0, w_avg: jax.Array | None = None,
                   keys: Any = ("fd_classifier", "precision", "recall", "coverage"), suffix: str = "") -> dict:
    """`evaluate_samples` of G(params) at latents normal(PRNGKey(seed), [num_samples, z_dim]) with const noise
    (deterministic: the same params, n and seed give the same images), metric seed `seed`."""
    from jgen.metrics import sample_quality

    z = jax.random.normal(jax.random.PRNGKey(seed), (num_samples, g_config.z_dim))
    images = to_uint8(generate(g_config, params, z, truncation_psi=truncation_psi, w_avg=w_avg))
    return sample_quality.evaluate_samples(np.asarray(images), dataset, num_samples=num_samples, seed=seed,
                                           keys=keys, suffix=suffix, memorisation=False)


def to_uint8(images: Any) -> Any:
    """[-1, 1] images -> 0..255 uint8 (clipped), the scale of the data layer and of the sample metrics."""
    return jnp.clip(jnp.round((jnp.asarray(images) + 1.0) * 127.5), 0, 255).astype(jnp.uint8)
