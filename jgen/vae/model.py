"""A convolutional VAE whose architecture is a config block, and the layer table that describes it.

    config = vae_config(image_shape=(28, 28, 1), latent_dim=32, channels=(32, 64), likelihood="bernoulli")
    model = make_vae(config)
    params = model.init(key, jnp.zeros((1, 28, 28, 1)), key)       # init runs encode + decode
    mean, log_var = model.apply(params, x, method="encode")        # [B, D] each
    out = model.apply(params, z, method="decode")                  # [B, H, W, k C]: the likelihood's parameters
    parts = elbo(model, params, key, x)                            # Elbo(recon, kl, elbo), [B] nats each
    rows = layer_table(config)                                     # the architecture as table rows

Encoder: one `channels[i]` conv (kernel `kernels[i]`, stride `strides[i]`, SAME padding) + activation per
entry, flatten, an optional dense layer of `hidden` units, and one dense layer to (mean, log-variance) of
the `latent_dim`-dimensional Gaussian q(z | x). Decoder: the mirror image: an optional dense `hidden`
layer, a dense projection to the encoder's last feature map, then per encoder layer in reverse order a
transposed convolution (`upsample="transpose"`) or a nearest-neighbour upsampling followed by a convolution
(`upsample="resize"`, which avoids the checkerboard artefacts of strided transposed convolutions, Odena et
al. 2016), ending in the likelihood's parameters (`jgen.vae.likelihoods`).

References:
  Kingma & Welling, Auto-Encoding Variational Bayes, ICLR 2014.
  Rezende, Mohamed & Wierstra, Stochastic Backpropagation and Approximate Inference, ICML 2014.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jgen.train import num_params
from jgen.vae import bounds, likelihoods

__all__ = ["ACTIVATIONS", "UPSAMPLES", "vae_config", "check_config", "Encoder", "Decoder", "VAE", "make_vae",
           "elbo", "iwae_bound", "layer_table", "markdown_table", "num_params"]

ACTIVATIONS = {"relu": nn.relu, "elu": nn.elu, "swish": nn.swish, "gelu": nn.gelu, "leaky_relu": nn.leaky_relu}
UPSAMPLES = ("transpose", "resize")


def vae_config(*, image_shape: Sequence[int] = (28, 28, 1), latent_dim: int = 32,
               channels: Sequence[int] = (32, 64), kernels: Sequence[int] = (4, 4), strides: Sequence[int] = (2, 2),
               hidden: int = 0, activation: str = "relu", upsample: str = "transpose",
               likelihood: str = "bernoulli", gaussian_scale: float = 0.1, learn_scale: bool = False,
               num_levels: int = 256, dtype: str = "float32") -> ml_collections.ConfigDict:
    """The architecture block of a conv VAE (every field can be overridden by `--config.model.<field>`).

    Args:
      image_shape: (H, W, C) of the data; H and W must be divisible by the product of `strides`.
      latent_dim: D, the dimension of z.
      channels, kernels, strides: one encoder convolution per entry (the decoder mirrors them).
      hidden: width of an extra dense layer after the encoder's convolutions and before the decoder's
        (0: none).
      activation: one of `ACTIVATIONS`.
      upsample: "transpose" (strided transposed convolutions) or "resize" (nearest upsampling + conv).
      likelihood: one of `jgen.vae.likelihoods.LIKELIHOODS`.
      gaussian_scale, learn_scale: the Gaussian likelihood's fixed sigma, or a learned one per channel.
      num_levels: levels of the discretised logistic (256 for 8-bit data).
      dtype: "float32" or "bfloat16" for the convolutions and dense layers (params stay float32; the
        encoder's outputs and the likelihood are float32).
    """
    return ml_collections.ConfigDict(dict(
        image_shape=tuple(int(s) for s in image_shape), latent_dim=int(latent_dim),
        channels=tuple(int(c) for c in channels), kernels=tuple(int(k) for k in kernels),
        strides=tuple(int(s) for s in strides), hidden=int(hidden), activation=activation, upsample=upsample,
        likelihood=likelihood, gaussian_scale=float(gaussian_scale), learn_scale=bool(learn_scale),
        num_levels=int(num_levels), dtype=dtype))


def check_config(cfg: Any, prefix: str = "model") -> None:
    """Raises ValueError naming the first invalid field of an architecture block."""
    def bad(key: str, expected: str) -> ValueError:
        return ValueError(f"config.{prefix}.{key}={cfg[key]!r} is not valid: expected {expected}. Set "
                          f"--config.{prefix}.{key}=... accordingly.")

    if len(cfg.image_shape) != 3:
        raise bad("image_shape", "(H, W, C)")
    n = len(cfg.channels)
    if n == 0 or len(cfg.kernels) != n or len(cfg.strides) != n:
        raise bad("kernels", f"as many kernels and strides as channels ({n} >= 1 each)")
    total = math.prod(cfg.strides)
    if cfg.image_shape[0] % total or cfg.image_shape[1] % total:
        raise bad("strides", f"strides whose product ({total}) divides the image size "
                  f"{cfg.image_shape[0]}x{cfg.image_shape[1]}")
    if cfg.activation not in ACTIVATIONS:
        raise bad("activation", f"one of {', '.join(ACTIVATIONS)}")
    if cfg.upsample not in UPSAMPLES:
        raise bad("upsample", f"one of {', '.join(UPSAMPLES)}")
    if cfg.likelihood not in likelihoods.LIKELIHOODS:
        raise bad("likelihood", f"one of {', '.join(likelihoods.LIKELIHOODS)}")
    if cfg.dtype not in ("float32", "bfloat16"):
        raise bad("dtype", "float32 or bfloat16")
    if cfg.latent_dim < 1:
        raise bad("latent_dim", "a positive integer")


class Encoder(nn.Module):
    """x [B, H, W, C] in [0, 1] -> (mean, log_var) [B, D] each (float32)."""

    channels: Sequence[int]
    kernels: Sequence[int]
    strides: Sequence[int]
    hidden: int
    latent_dim: int
    activation: str = "relu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        act = ACTIVATIONS[self.activation]
        x = x.astype(self.dtype)
        for i, (c, k, s) in enumerate(zip(self.channels, self.kernels, self.strides)):
            x = act(nn.Conv(c, (k, k), (s, s), padding="SAME", dtype=self.dtype, name=f"conv{i}")(x))
        x = x.reshape(x.shape[0], -1)
        if self.hidden:
            x = act(nn.Dense(self.hidden, dtype=self.dtype, name="dense")(x))
        out = nn.Dense(2 * self.latent_dim, dtype=self.dtype, name="mean_log_var")(x).astype(jnp.float32)
        mean, log_var = jnp.split(out, 2, axis=-1)
        return mean, log_var


class Decoder(nn.Module):
    """z [B, D] -> the likelihood's parameters [B, H, W, out_channels] (+ C learned log-scales, broadcast)."""

    image_shape: Sequence[int]
    channels: Sequence[int]
    kernels: Sequence[int]
    strides: Sequence[int]
    hidden: int
    out_channels: int
    activation: str = "relu"
    upsample: str = "transpose"
    learned_log_scales: int = 0  # C: append one learned log-scale per channel (Gaussian, learn_scale)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        total = math.prod(self.strides)
        h, w = self.image_shape[0] // total, self.image_shape[1] // total
        x = z.astype(self.dtype)
        if self.hidden:
            x = act(nn.Dense(self.hidden, dtype=self.dtype, name="dense")(x))
        x = act(nn.Dense(h * w * self.channels[-1], dtype=self.dtype, name="project")(x))
        x = x.reshape(x.shape[0], h, w, self.channels[-1])
        n = len(self.channels)
        for j, i in enumerate(reversed(range(n))):
            c = self.channels[i - 1] if i > 0 else self.out_channels
            k, s = self.kernels[i], self.strides[i]
            if self.upsample == "transpose":
                x = nn.ConvTranspose(c, (k, k), (s, s), padding="SAME", dtype=self.dtype, name=f"up{j}")(x)
            else:
                if s > 1:
                    x = jnp.repeat(jnp.repeat(x, s, axis=1), s, axis=2)
                x = nn.Conv(c, (k, k), padding="SAME", dtype=self.dtype, name=f"up{j}")(x)
            if i > 0:
                x = act(x)
        x = x.astype(jnp.float32)
        if self.learned_log_scales:
            log_scale = self.param("log_scale", nn.initializers.zeros, (self.learned_log_scales,))
            x = jnp.concatenate([x, jnp.broadcast_to(log_scale, x.shape[:-1] + log_scale.shape)], axis=-1)
        return x


class VAE(nn.Module):
    """Encoder, decoder and likelihood of one conv VAE (build it with `make_vae(config)`).

    Data `x` are on the likelihood's scale (`{0, 1}` for Bernoulli, [0, 1], or levels 0..L-1); the encoder
    sees them mapped to [0, 1].
    """

    encoder: Encoder
    decoder: Decoder
    likelihood: Any

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """q(z | x): (mean, log_var), [B, D] each."""
        return self.encoder(self._to_unit(x))

    def decode(self, z: jax.Array) -> jax.Array:
        """The likelihood's parameters for latents z [B, D]: [B, H, W, k C]."""
        return self.decoder(z)

    def __call__(self, x: jax.Array, key: jax.Array) -> jax.Array:
        """Decoder output for one sample z ~ q(z | x) (used by `init`)."""
        mean, log_var = self.encode(x)
        return self.decode(bounds.reparameterize(jax.random.normal(key, mean.shape), mean, log_var))

    def _to_unit(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x, jnp.float32)
        if isinstance(self.likelihood, likelihoods.DiscretizedLogistic):
            return x / (self.likelihood.num_levels - 1)
        return x


def _likelihood(cfg: Any):
    return likelihoods.get(cfg.likelihood, scale=cfg.gaussian_scale, learn_scale=cfg.learn_scale,
                           num_levels=cfg.num_levels)


def make_vae(cfg: Any) -> VAE:
    """The `VAE` of an architecture block (`vae_config`)."""
    check_config(cfg)
    lik = _likelihood(cfg)
    c = int(cfg.image_shape[-1])
    learned = c if isinstance(lik, likelihoods.Gaussian) and lik.learn_scale else 0
    dtype = jnp.bfloat16 if cfg.dtype == "bfloat16" else jnp.float32
    common = dict(channels=tuple(cfg.channels), kernels=tuple(cfg.kernels), strides=tuple(cfg.strides),
                  hidden=int(cfg.hidden), activation=cfg.activation, dtype=dtype)
    encoder = Encoder(latent_dim=int(cfg.latent_dim), **common)
    decoder = Decoder(image_shape=tuple(cfg.image_shape), out_channels=lik.out_channels(c) - learned,
                      upsample=cfg.upsample, learned_log_scales=learned, **common)
    return VAE(encoder=encoder, decoder=decoder, likelihood=lik)


def _model_fns(model: VAE, params: Any):
    encode = lambda x: model.apply(params, x, method="encode")
    log_likelihood = lambda z, x: model.likelihood.log_prob(model.apply(params, z, method="decode"), x)
    return encode, log_likelihood


def elbo(model: VAE, params: Any, key: jax.Array, x: jax.Array, *, analytic_kl: bool = True) -> bounds.Elbo:
    """`jgen.vae.bounds.elbo` of the VAE on a batch x: `Elbo(recon, kl, elbo)`, [B] nats each."""
    return bounds.elbo(key, x, *_model_fns(model, params), analytic_kl=analytic_kl)


def iwae_bound(model: VAE, params: Any, key: jax.Array, x: jax.Array, num_samples: int, *,
               chunk_size: int | None = None) -> jax.Array:
    """`jgen.vae.bounds.iwae_bound` of the VAE on a batch x: [B] lower bounds on log p(x) (nats)."""
    return bounds.iwae_bound(key, x, *_model_fns(model, params), num_samples, chunk_size=chunk_size)


# The layer table ------------------------------------------------------------------------------------------
def layer_table(cfg: Any) -> list[dict]:
    """The architecture of a `vae_config` block as rows, from the input to the likelihood's parameters.

    Each row: `layer` (its path in the params tree, e.g. "encoder/conv0"), `kind`, `kernel`, `stride`,
    `channels` ("in -> out"), `output` (shape of one example's output, "HxWxC" or a width) and `params`
    (weights + biases). A row `z` gives the latent dimension (sampled from q(z | x); no parameters), and the
    last row the totals. Shapes and counts are computed from the config alone (tests check them against the
    params tree and a forward pass).
    """
    check_config(cfg)
    lik = _likelihood(cfg)
    H, W, C = cfg.image_shape
    D = cfg.latent_dim
    rows = [dict(layer="input", kind="image", kernel="", stride="", channels=str(C), output=f"{H}x{W}x{C}",
                 params=0)]

    def conv(layer, kind, k, s, cin, cout, h, w):
        rows.append(dict(layer=layer, kind=kind, kernel=f"{k}x{k}", stride=s, channels=f"{cin} -> {cout}",
                         output=f"{h}x{w}x{cout}", params=k * k * cin * cout + cout))

    def dense(layer, kind, nin, nout, output=None):
        rows.append(dict(layer=layer, kind=kind, kernel="", stride="", channels=f"{nin} -> {nout}",
                         output=output or str(nout), params=nin * nout + nout))

    h, w, cin = H, W, C
    for i, (c, k, s) in enumerate(zip(cfg.channels, cfg.kernels, cfg.strides)):
        h, w = -(-h // s), -(-w // s)
        conv(f"encoder/conv{i}", f"conv + {cfg.activation}", k, s, cin, c, h, w)
        cin = c
    flat = h * w * cin
    if cfg.hidden:
        dense("encoder/dense", f"dense + {cfg.activation}", flat, cfg.hidden)
        flat = cfg.hidden
    dense("encoder/mean_log_var", "dense (mean, log-variance)", flat, 2 * D, output=f"2x{D}")
    rows.append(dict(layer="z", kind="latent: z = mean + std * eps", kernel="", stride="", channels=str(D),
                     output=str(D), params=0))
    nin = D
    if cfg.hidden:
        dense("decoder/dense", f"dense + {cfg.activation}", D, cfg.hidden)
        nin = cfg.hidden
    total = math.prod(cfg.strides)
    h, w, cin = H // total, W // total, cfg.channels[-1]
    dense("decoder/project", f"dense + {cfg.activation}, reshape", nin, h * w * cin, output=f"{h}x{w}x{cin}")
    learned = C if isinstance(lik, likelihoods.Gaussian) and lik.learn_scale else 0
    n = len(cfg.channels)
    for j, i in enumerate(reversed(range(n))):
        cout = cfg.channels[i - 1] if i > 0 else lik.out_channels(C) - learned
        k, s = cfg.kernels[i], cfg.strides[i]
        h, w = h * s, w * s
        act = f" + {cfg.activation}" if i > 0 else f" ({lik.name} parameters)"
        if cfg.upsample == "transpose":
            conv(f"decoder/up{j}", f"transposed conv{act}", k, s, cin, cout, h, w)
        else:
            conv(f"decoder/up{j}", f"upsample x{s} + conv{act}", k, 1, cin, cout, h, w)
        cin = cout
    if learned:
        rows.append(dict(layer="decoder/log_scale", kind="learned log-scale per channel", kernel="", stride="",
                         channels=str(C), output=f"{H}x{W}x{2 * C}", params=C))
    rows.append(dict(layer="total", kind=f"latent dimension {D}", kernel="", stride="", channels="",
                     output="", params=sum(r["params"] for r in rows)))
    return rows


def markdown_table(rows: Sequence[dict]) -> str:
    """Rows of equal keys (e.g. `layer_table`) as a GitHub-markdown table."""
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(f"{r[c]:,}" if isinstance(r[c], int) and c == "params" else str(r[c])
                                for c in cols) + " |" for r in rows]
    return "\n".join(lines)


