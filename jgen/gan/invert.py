"""GAN inversion: find the latent whose StyleGAN2 image best matches a target, in z, w or w+.

    cfg = invert_config(space="wplus", loss="combined")          # Adam, lr 0.01, 1000 steps
    result = invert(g_config, params, targets, cfg, w_avg=w_avg)  # targets [B, H, W, C] in [-1, 1]
    result.ws, result.images, result.l2, result.lpips, result.cosine

Spaces (Abdal et al. 2019, Image2StyleGAN; Karras et al. 2020, the StyleGAN2 projector):

* "z": the input latent z [B, z_dim]; the image is synthesis(broadcast(mapping(z))).
* "w": one intermediate latent w [B, w_dim] shared by every synthesis layer.
* "wplus": one w per synthesis layer, ws [B, num_ws, w_dim] (num_ws = 2 log2(R) - 2).

Initialisation, as the public projectors: w and w+ start at the tracked average latent w_avg (every layer);
z starts at the z whose mapping is nearest to w_avg among `z_init_draws` N(0, I) draws (z = 0, the mean, is
the one point where the mapping's pixel norm is undefined), so all three spaces start from (nearly) the same
average face. The noise inputs are the generator's fixed "const" noise and are not optimised.

Losses, per target, summed over the batch (Adam is per-coordinate and each latent only affects its own
target's loss, so the batch is B independent inversions run as one computation):

* "mse": mean squared pixel error (pixels in [-1, 1]);
* "combined": mse + `lpips_weight` LPIPS + `cosine_weight` cosine distance, where LPIPS is the exact v0.1
  metric of `jgen.metrics.perceptual` (AlexNet or VGG16, grey images repeated to 3 channels, images smaller
  than `feature_size` bilinearly upsampled to it first) and the cosine distance is 1 - cos between the
  flattened last ReLU stage of the same backbone (`FEATURE_SPACE`: AlexNet relu5, 256 x 3 x 3 at 64 px), so
  one backbone pass serves both terms.

The loop: the target features are computed once; `chunk` Adam steps run in one jitted `lax.scan` per call
(on CPU one jitted step per call: XLA:CPU runs conv gradients inside a scan about 2x slower), and a progress
bar advances between calls. One compilation per (space, batch shape): the loss weights are arguments. Every space and
loss uses the same optimizer block (`optim`: Adam, constant lr 0.01); `InversionResult.hparams` records it.

Metrics per target (`distances`): `l2` = root-mean-square pixel difference in [-1, 1] units
(`perceptual.l2_pixels`), `lpips`, `cosine` as in the loss.

References:
  Abdal, Qin & Wonka, Image2StyleGAN: How to Embed Images Into the StyleGAN Latent Space?, ICCV 2019.
  Karras et al., Analyzing and Improving the Image Quality of StyleGAN, CVPR 2020 (projector, Sec. 5).
  Zhang et al., The Unreasonable Effectiveness of Deep Features as a Perceptual Metric, CVPR 2018 (LPIPS).
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jgen import optim, progress
from jgen.gan import stylegan2 as sg
from jgen.metrics import perceptual

__all__ = [
    "SPACES", "LOSSES", "FEATURE_SPACE", "invert_config", "check_invert_config", "InversionResult", "config_key",
    "initial_latent", "latent_to_ws", "features", "features_jit", "distances", "make_chunk", "invert", "crossover",
]

SPACES = ("z", "w", "wplus")
LOSSES = ("mse", "combined")
FEATURE_SPACE = "flattened last ReLU stage of the LPIPS backbone (AlexNet relu5 / VGG16 relu5_3)"


def invert_config(*, space: str = "wplus", loss: str = "mse", num_steps: int = 1000, learning_rate: float = 0.01,
                  lpips_weight: float = 1.0, cosine_weight: float = 0.5, net: str = "alexnet",
                  feature_size: int = 64, chunk: int = 0, z_init_draws: int = 10000,
                  seed: int = 0) -> ml_collections.ConfigDict:
    """The inversion block.

    Args:
      space: "z", "w" or "wplus" (see the module docstring).
      loss: "mse" or "combined" (mse + lpips_weight LPIPS + cosine_weight cosine distance).
      num_steps: Adam steps (1000, as the issue's default).
      learning_rate: Adam's constant learning rate (0.01), in `optim`.
      lpips_weight, cosine_weight: w1 and w2 of the combined loss (unused by "mse").
      net: LPIPS backbone, "alexnet" or "vgg16"; the cosine term uses its last stage.
      feature_size: images smaller than this are bilinearly upsampled to it before the backbone (AlexNet's
        11x11 stride-4 stem leaves almost nothing of a 32-px image).
      chunk: Adam steps per jitted call, fused in one `lax.scan` (the progress bar advances between calls);
        the largest divisor of num_steps not above it is used. 0: automatic, 1 (one jitted step per call)
        on CPU, where XLA runs the conv gradients inside a scan about 2x slower than alone, 100 elsewhere.
      z_init_draws: N(0, I) draws searched for the z space's start (the one whose w is nearest w_avg).
      seed: PRNG seed of those draws.
    """
    c = ml_collections.ConfigDict()
    c.space, c.loss, c.num_steps = space, loss, int(num_steps)
    c.optim = optim.optim_config(name="adam", learning_rate=learning_rate, schedule="constant")
    c.lpips_weight, c.cosine_weight = float(lpips_weight), float(cosine_weight)
    c.net, c.feature_size, c.chunk = net, int(feature_size), int(chunk)
    c.z_init_draws, c.seed = int(z_init_draws), int(seed)
    check_invert_config(c)
    return c


def check_invert_config(c: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the bad field of an `invert_config` block."""
    if c.space not in SPACES:
        raise ValueError(f"space={c.space!r} is not valid: expected one of {SPACES}")
    if c.loss not in LOSSES:
        raise ValueError(f"loss={c.loss!r} is not valid: expected one of {LOSSES}")
    if c.net not in perceptual.NETS:
        raise ValueError(f"net={c.net!r} is not valid: expected one of {perceptual.NETS}")
    for field in ("num_steps", "z_init_draws", "feature_size"):
        if int(c[field]) < 1:
            raise ValueError(f"{field}={c[field]} is not valid: expected a positive whole number")
    if int(c.chunk) < 0:
        raise ValueError(f"chunk={c.chunk} is not valid: expected 0 (automatic) or a number of steps per call")
    if c.lpips_weight < 0 or c.cosine_weight < 0:
        raise ValueError(f"lpips_weight={c.lpips_weight}, cosine_weight={c.cosine_weight}: expected weights >= 0")


class InversionResult(NamedTuple):
    """What `invert` returns (numpy arrays; B targets).

    latents: the optimised latent, [B, z_dim] (z), [B, w_dim] (w) or [B, num_ws, w_dim] (wplus).
    ws: the style vectors it gives, [B, num_ws, w_dim] (for crossover in any space).
    images: reconstructions synthesis(ws) [B, H, W, C] (const noise, not clipped).
    l2, lpips, cosine: per-target distances [B] of `images` to the targets (see `distances`).
    losses: mean loss over the batch after each step, [num_steps].
    hparams: the optimizer and loss settings used (identical across spaces by construction).
    seconds: wall time of the optimisation loop (compilation included).
    """

    latents: np.ndarray
    ws: np.ndarray
    images: np.ndarray
    l2: np.ndarray
    lpips: np.ndarray
    cosine: np.ndarray
    losses: np.ndarray
    hparams: dict
    seconds: float


def _generator(g_config):
    return sg.Generator(g_config)


def config_key(block) -> tuple:
    """A hashable key of a ConfigDict block (jitted functions are cached per generator and inversion config)."""
    return tuple(sorted((k, config_key(v) if isinstance(v, ml_collections.ConfigDict) else v)
                        for k, v in block.items()))


def _thaw(key: tuple) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({k: _thaw(v) if isinstance(v, tuple) and v and isinstance(v[0], tuple)
                                      and len(v[0]) == 2 and isinstance(v[0][0], str) else v for k, v in key})


@functools.lru_cache(maxsize=None)
def _jitted(g_key: tuple, space: str):
    """Cached jitted (mapping, ws of a latent, synthesis) of one generator config."""
    g_config = _thaw(g_key)
    G = _generator(g_config)
    mapping = jax.jit(lambda p, z: G.apply({"params": p}, z, method=G.mapping))
    to_ws = jax.jit(lambda p, latent: latent_to_ws(g_config, p, latent, space))
    synth = jax.jit(lambda p, ws: G.apply({"params": p}, ws, method=G.synthesis, noise_mode="const"))
    return mapping, to_ws, synth


def latent_to_ws(g_config, params, latent: jax.Array, space: str) -> jax.Array:
    """The ws [B, num_ws, w_dim] of a latent of `space` ([B, z_dim], [B, w_dim] or [B, num_ws, w_dim])."""
    n = sg.num_ws(g_config.resolution)
    if space == "wplus":
        return latent
    if space == "z":
        G = _generator(g_config)
        latent = G.apply({"params": params}, latent, method=G.mapping)
    return sg.broadcast_ws(latent, n)


def initial_latent(g_config, params, w_avg: jax.Array, batch: int, space: str, *, z_init_draws: int = 10000,
                   seed: int = 0) -> jax.Array:
    """The start of an inversion in `space` for `batch` targets (see the module docstring), float32."""
    w_avg = jnp.asarray(w_avg, jnp.float32)
    if space == "w":
        return jnp.broadcast_to(w_avg, (batch, g_config.w_dim))
    if space == "wplus":
        return jnp.broadcast_to(w_avg, (batch, sg.num_ws(g_config.resolution), g_config.w_dim))
    z = jax.random.normal(jax.random.PRNGKey(seed), (z_init_draws, g_config.z_dim))
    w = _jitted(config_key(g_config), space)[0](params, z)
    best = jnp.argmin(jnp.sum(jnp.square(w - w_avg), -1))
    return jnp.broadcast_to(z[best], (batch, g_config.z_dim))


def _resize(images: jax.Array, size: int) -> jax.Array:
    b, h, w, c = images.shape
    if h >= size and w >= size:
        return images
    s = max(size / h, size / w)
    return jax.image.resize(images, (b, math.ceil(h * s), math.ceil(w * s), c), "bilinear")


def _unit(f: jax.Array, eps: float = 1e-10) -> jax.Array:
    return f / (jnp.sqrt(jnp.sum(f * f, axis=-1, keepdims=True)) + eps)  # LPIPS's normalize_tensor


def features(lpips_params: dict, images: jax.Array, net: str, size: int) -> tuple[list[jax.Array], jax.Array]:
    """(the five channel-normalised LPIPS stages [B, h_l, w_l, C_l], the unit cosine embedding [B, D]) of
    `images` [B, H, W, C] in [-1, 1], upsampled to `size` first when smaller."""
    stages = perceptual.stage_features(lpips_params, _resize(images, size), net)
    flat = stages[-1].reshape(stages[-1].shape[0], -1)
    return [_unit(f) for f in stages], _unit(flat, 1e-12)


def _lpips_from(lpips_params: dict, fa: list[jax.Array], fb: list[jax.Array]) -> jax.Array:
    return sum(jnp.mean(jnp.sum(w * (a - b) ** 2, axis=-1), axis=(1, 2))
               for a, b, w in zip(fa, fb, lpips_params["heads"]))


def _per_target(lpips_params, images, targets, target_feats, net, size, want_features: bool):
    """Per-target (mse, lpips, cosine) [B] each; the feature terms are zeros when not wanted."""
    mse = jnp.mean(jnp.square(images - targets), axis=(1, 2, 3))
    if not want_features:
        zero = jnp.zeros_like(mse)
        return mse, zero, zero
    stages, emb = features(lpips_params, images, net, size)
    t_stages, t_emb = target_feats
    return mse, _lpips_from(lpips_params, stages, t_stages), 1.0 - jnp.sum(emb * t_emb, -1)


def distances(images: Any, targets: Any, *, net: str = "alexnet", feature_size: int = 64,
              lpips_params: dict | None = None) -> dict[str, np.ndarray]:
    """Per-image distances between `images` and `targets` [B, H, W, C] in [-1, 1]:
    {"l2": RMS pixel difference, "lpips": LPIPS v0.1 (`net`), "cosine": 1 - cos in `FEATURE_SPACE`}, [B] each."""
    lpips_params = perceptual.load_lpips(net) if lpips_params is None else lpips_params
    images, targets = jnp.asarray(images, jnp.float32), jnp.asarray(targets, jnp.float32)
    if images.shape != targets.shape:
        raise ValueError(f"images and targets must have the same shape, got {images.shape} and {targets.shape}")
    lp, cos = _feature_distances(lpips_params, images, targets, net=net, size=int(feature_size))
    return {"l2": perceptual.l2_pixels(images, targets), "lpips": np.asarray(lp, np.float64),
            "cosine": np.asarray(cos, np.float64)}


def _fd(lpips_params, images, targets, net, size):
    t = features(lpips_params, targets, net, size)
    _, lp, cos = _per_target(lpips_params, images, targets, t, net, size, True)
    return lp, cos


_feature_distances = jax.jit(_fd, static_argnames=("net", "size"))
features_jit = jax.jit(features, static_argnames=("net", "size"))  # `features`, compiled once per (net, size, shape)


def _largest_divisor_at_most(n: int, k: int) -> int:
    return max(d for d in range(1, min(n, k) + 1) if n % d == 0)


@functools.lru_cache(maxsize=None)
def make_chunk(g_key: tuple, space: str, net: str, size: int, optim_key: tuple, num_steps: int, steps: int):
    """A jitted `(latent, opt_state, params, lpips_params, targets, target_feats, weights [2]) -> (latent,
    opt_state, mean losses [steps])` running `steps` Adam steps.

    The loss weights (w1, w2) are traced arguments and the feature terms sit behind a `lax.cond`, so the
    "mse" and "combined" losses of one space share one compilation and "mse" never runs the backbone.
    """
    g_config = _thaw(g_key)
    G = _generator(g_config)
    tx = optim.make_optimizer(_thaw(optim_key), num_steps)

    def loss_fn(latent, params, lpips_params, targets, target_feats, weights):
        ws = latent_to_ws(g_config, params, latent, space)
        images = G.apply({"params": params}, ws, method=G.synthesis, noise_mode="const")
        mse = jnp.mean(jnp.square(images - targets), axis=(1, 2, 3))

        def feature_terms(images):
            _, lp, cos = _per_target(lpips_params, images, targets, target_feats, net, size, True)
            return weights[0] * lp + weights[1] * cos

        extra = jax.lax.cond(jnp.any(weights > 0), feature_terms, lambda im: jnp.zeros_like(mse), images)
        per = mse + extra
        return jnp.sum(per), jnp.mean(per)

    def run(latent, opt_state, params, lpips_params, targets, target_feats, weights):
        def step(carry, _):
            latent, opt_state = carry
            grads, mean_loss = jax.grad(loss_fn, has_aux=True)(latent, params, lpips_params, targets,
                                                              target_feats, weights)
            updates, opt_state = tx.update(grads, opt_state, latent)
            return (optax.apply_updates(latent, updates), opt_state), mean_loss

        if steps == 1:  # XLA:CPU runs conv gradients inside a scan's while loop about 2x slower than alone
            (latent, opt_state), loss = step((latent, opt_state), None)
            return latent, opt_state, loss[None]
        (latent, opt_state), losses = jax.lax.scan(step, (latent, opt_state), None, length=steps)
        return latent, opt_state, losses

    return jax.jit(run, donate_argnums=(0, 1)), tx


def invert(g_config, params, targets: Any, config: ml_collections.ConfigDict, *, w_avg: Any,
           lpips_params: dict | None = None, init: Any = None, progress_bar: bool = True,
           desc: str | None = None) -> InversionResult:
    """Inverts every target [B, H, W, C] (in [-1, 1], the generator's shape) at once; see the module docstring.

    Args:
      g_config, params: the generator (`stylegan2_config`, its params).
      targets: [B, R, R, img_channels] images in [-1, 1].
      config: an `invert_config` block.
      w_avg: the generator's tracked average latent [w_dim] (the start point).
      lpips_params: `perceptual.load_lpips(config.net)` (loaded when None).
      init: a start latent of the space's shape instead of the default (e.g. a known w, for tests).
      progress_bar: show a bar (only on a terminal) advancing between jitted chunks.
    """
    check_invert_config(config)
    targets = jnp.asarray(targets, jnp.float32)
    r, k = g_config.resolution, g_config.img_channels
    if targets.ndim != 4 or targets.shape[1:] != (r, r, k):
        raise ValueError(f"targets must be [batch, {r}, {r}, {k}] (the generator's images), "
                         f"got shape {tuple(targets.shape)}")
    lpips_params = perceptual.load_lpips(config.net) if lpips_params is None else lpips_params
    b = targets.shape[0]
    latent = (initial_latent(g_config, params, w_avg, b, config.space, z_init_draws=config.z_init_draws,
                             seed=config.seed) if init is None else jnp.asarray(init, jnp.float32))
    latent = jnp.array(latent)  # a fresh buffer: the chunk donates it
    chunk = int(config.chunk) or (1 if jax.default_backend() == "cpu" else 100)
    steps = _largest_divisor_at_most(config.num_steps, chunk)
    run, tx = make_chunk(config_key(g_config), config.space, config.net, int(config.feature_size),
                          config_key(config.optim), int(config.num_steps), steps)
    opt_state = tx.init(latent)
    want = config.loss == "combined"
    target_feats = features_jit(lpips_params, targets, net=config.net, size=config.feature_size)
    weights = jnp.asarray([config.lpips_weight, config.cosine_weight] if want else [0.0, 0.0], jnp.float32)
    t0 = time.perf_counter()
    losses = []
    with progress.bar(total=config.num_steps, desc=desc or f"invert {config.space}/{config.loss}",
                      enabled=progress_bar) as pbar:
        for _ in range(config.num_steps // steps):
            latent, opt_state, chunk_losses = run(latent, opt_state, params, lpips_params, targets, target_feats,
                                                 weights)
            losses.append(chunk_losses)
            pbar.update(steps)
    losses = np.concatenate([np.asarray(x) for x in losses])
    seconds = time.perf_counter() - t0
    _, to_ws, synth = _jitted(config_key(g_config), config.space)
    ws = to_ws(params, latent)
    images = synth(params, ws)
    d = distances(images, targets, net=config.net, feature_size=config.feature_size, lpips_params=lpips_params)
    hparams = {"optimizer": "adam", "learning_rate": float(config.optim.learning_rate), "b1": config.optim.b1,
               "b2": config.optim.b2, "eps": config.optim.eps, "schedule": config.optim.schedule,
               "num_steps": int(config.num_steps), "lpips_weight": config.lpips_weight if want else 0.0,
               "cosine_weight": config.cosine_weight if want else 0.0, "net": config.net,
               "feature_size": int(config.feature_size), "loss": config.loss}
    return InversionResult(np.asarray(latent), np.asarray(ws), np.asarray(images), d["l2"], d["lpips"],
                           d["cosine"], losses, hparams, seconds)


def crossover(ws_content: Any, ws_style: Any) -> tuple[jax.Array, jax.Array]:
    """Split A and split B of two w+ codes [B, num_ws, w_dim]: A takes layers 1..n/2 (the coarse half, 0-based
    0..n/2-1) from the content code and the rest from the style code; B the reverse. No fine-tuning."""
    ws_content, ws_style = jnp.asarray(ws_content), jnp.asarray(ws_style)
    half = ws_content.shape[-2] // 2
    return sg.style_mix(ws_content, ws_style, half), sg.style_mix(ws_style, ws_content, half)
