"""Decoder likelihoods p(x | z) of a VAE: the decoder's output map `out` [B, H, W, k C] -> log p(x | z) [B].

Each likelihood is a small frozen dataclass with the same four members, so the model and the bounds never
branch on the data type:

    lik = likelihoods.get("bernoulli")
    lik.out_channels(1)          # channels the decoder must produce for C = 1 data channels
    lik.log_prob(out, x)         # [B] nats, summed over pixels and channels
    lik.mean(out)                # the image the decoder "means" (for reconstructions and samples)
    lik.sample(key, out)         # x ~ p(x | z)

Data scales: `bernoulli` takes x in {0, 1} (binarised digits); `gaussian` and `bce` take x in [0, 1];
`logistic` takes 8-bit levels 0..255 (integer-valued floats or ints) and is a probability over the 256
levels, so its NLL in bits/dim is directly comparable with the autoregressive models'.

References:
  Kingma & Welling, Auto-Encoding Variational Bayes, 2014 (Bernoulli and Gaussian decoders).
  Salimans et al., PixelCNN++, 2017 (discretised logistic, here with one component).
  Rybkin, Daniilidis & Levine, Simple and Effective VAE Training with Calibrated Decoders, 2021 (a learned
  shared Gaussian scale).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

__all__ = ["Bernoulli", "Gaussian", "BinaryCrossEntropy", "DiscretizedLogistic", "LIKELIHOODS", "get"]

_LOG_2PI = math.log(2 * math.pi)


def _sum_pixels(x: jax.Array) -> jax.Array:
    return x.reshape(x.shape[0], -1).sum(axis=1)


@dataclasses.dataclass(frozen=True)
class Bernoulli:
    """Independent Bernoulli pixels; `out` [B, H, W, C] are logits, x in {0, 1}."""

    name: str = "bernoulli"

    def out_channels(self, channels: int) -> int:
        return channels

    def log_prob(self, out: jax.Array, x: jax.Array) -> jax.Array:
        # log sigmoid(l) if x = 1, log sigmoid(-l) if x = 0: -BCE with logits, stable for large |l|.
        return _sum_pixels(x * jax.nn.log_sigmoid(out) + (1 - x) * jax.nn.log_sigmoid(-out))

    def mean(self, out: jax.Array) -> jax.Array:
        return jax.nn.sigmoid(out)

    def sample(self, key: jax.Array, out: jax.Array) -> jax.Array:
        return jax.random.bernoulli(key, jax.nn.sigmoid(out)).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class Gaussian:
    """Independent Gaussian pixels N(x; mu, sigma^2), x in [0, 1] (a density: nats on the continuous scale).

    With `learn_scale=False` the decoder outputs mu [B, H, W, C] and sigma = `scale` is fixed; with
    `learn_scale=True` it outputs [B, H, W, 2C] = (mu, log sigma) (the decoder broadcasts one learned
    log-scale per channel, Rybkin et al. 2021).
    """

    scale: float = 0.1
    learn_scale: bool = False
    name: str = "gaussian"

    def out_channels(self, channels: int) -> int:
        return 2 * channels if self.learn_scale else channels

    def _split(self, out: jax.Array) -> tuple[jax.Array, jax.Array]:
        if self.learn_scale:
            mu, log_scale = jnp.split(out, 2, axis=-1)
            return mu, log_scale
        return out, jnp.full_like(out, math.log(self.scale))

    def log_prob(self, out: jax.Array, x: jax.Array) -> jax.Array:
        mu, log_scale = self._split(out)
        return _sum_pixels(-0.5 * ((x - mu) * jnp.exp(-log_scale)) ** 2 - log_scale - 0.5 * _LOG_2PI)

    def mean(self, out: jax.Array) -> jax.Array:
        return jnp.clip(self._split(out)[0], 0.0, 1.0)

    def sample(self, key: jax.Array, out: jax.Array) -> jax.Array:
        mu, log_scale = self._split(out)
        return mu + jnp.exp(log_scale) * jax.random.normal(key, mu.shape)


@dataclasses.dataclass(frozen=True)
class BinaryCrossEntropy:
    """-BCE(x, sigmoid(out)) for intensities x in [0, 1]: the usual "Bernoulli" loss on grey or colour images.

    Not a normalised density of continuous x (the continuous Bernoulli's normaliser is left out, Loaiza-Ganem
    & Cunningham 2019), so its "NLL" is a training loss, not a likelihood to compare across models.
    """

    name: str = "bce"

    def out_channels(self, channels: int) -> int:
        return channels

    def log_prob(self, out: jax.Array, x: jax.Array) -> jax.Array:
        return Bernoulli().log_prob(out, x)

    def mean(self, out: jax.Array) -> jax.Array:
        return jax.nn.sigmoid(out)

    def sample(self, key: jax.Array, out: jax.Array) -> jax.Array:
        return jax.nn.sigmoid(out)  # the mean: sampling BCE "noise" means nothing for continuous pixels


@dataclasses.dataclass(frozen=True)
class DiscretizedLogistic:
    """Discretised logistic over `num_levels` levels (PixelCNN++, one component), x in 0..num_levels-1.

    The decoder outputs [B, H, W, 2C] = (mu, log s) on the [-1, 1] scale; level k is the bin
    [c_k - 1/(L-1), c_k + 1/(L-1)] around c_k = 2k/(L-1) - 1, and the edge bins extend to -inf and +inf,
    so the L probabilities of a pixel sum to 1. log P is computed as
    log sigmoid(a) + log sigmoid(-b) + log(1 - exp(b - a)) for the bin's standardised edges b < a, which
    stays finite where the two CDF values round to the same float.

    Attributes:
      num_levels: L (256 for 8-bit data).
      min_log_scale: floor of log s (a scale far below the bin width adds nothing and overflows exp(-log s)).
    """

    num_levels: int = 256
    min_log_scale: float = -7.0
    name: str = "logistic"

    def out_channels(self, channels: int) -> int:
        return 2 * channels

    def _split(self, out: jax.Array) -> tuple[jax.Array, jax.Array]:
        mu, log_s = jnp.split(out, 2, axis=-1)
        return mu, jnp.maximum(log_s, self.min_log_scale)

    def log_prob_per_pixel(self, out: jax.Array, x: jax.Array) -> jax.Array:
        """log P(x) per pixel [B, H, W, C] (nats)."""
        mu, log_s = self._split(out)
        half = 1.0 / (self.num_levels - 1)
        centre = 2.0 * jnp.asarray(x, jnp.float32) * half - 1.0
        inv_s = jnp.exp(-log_s)
        a = (centre + half - mu) * inv_s  # upper edge
        b = (centre - half - mu) * inv_s  # lower edge
        middle = jax.nn.log_sigmoid(a) + jax.nn.log_sigmoid(-b) + jnp.log(-jnp.expm1(b - a))
        lowest = jax.nn.log_sigmoid(a)  # P(x <= upper edge)
        highest = jax.nn.log_sigmoid(-b)  # P(x > lower edge)
        return jnp.where(x <= 0, lowest, jnp.where(x >= self.num_levels - 1, highest, middle))

    def log_prob(self, out: jax.Array, x: jax.Array) -> jax.Array:
        return _sum_pixels(self.log_prob_per_pixel(out, x))

    def mean(self, out: jax.Array) -> jax.Array:
        """The level of mu (the logistic's mode), as floats 0..L-1."""
        mu, _ = self._split(out)
        return jnp.clip(jnp.round((mu + 1.0) * 0.5 * (self.num_levels - 1)), 0, self.num_levels - 1)

    def sample(self, key: jax.Array, out: jax.Array) -> jax.Array:
        mu, log_s = self._split(out)
        u = jax.random.uniform(key, mu.shape, minval=1e-5, maxval=1 - 1e-5)
        y = mu + jnp.exp(log_s) * (jnp.log(u) - jnp.log1p(-u))
        return jnp.clip(jnp.round((y + 1.0) * 0.5 * (self.num_levels - 1)), 0, self.num_levels - 1)


LIKELIHOODS = ("bernoulli", "gaussian", "bce", "logistic")


def get(name: str, *, scale: float = 0.1, learn_scale: bool = False, num_levels: int = 256):
    """The likelihood called `name` (one of `LIKELIHOODS`); `scale`/`learn_scale` are the Gaussian's."""
    if name == "bernoulli":
        return Bernoulli()
    if name == "gaussian":
        if not learn_scale and not scale > 0:
            raise ValueError(f"a fixed Gaussian scale must be positive, got scale={scale}; set a positive "
                             "scale or learn_scale=True")
        return Gaussian(scale=float(scale), learn_scale=bool(learn_scale))
    if name == "bce":
        return BinaryCrossEntropy()
    if name == "logistic":
        return DiscretizedLogistic(num_levels=int(num_levels))
    raise ValueError(f"unknown likelihood {name!r}; expected one of {', '.join(LIKELIHOODS)}")
