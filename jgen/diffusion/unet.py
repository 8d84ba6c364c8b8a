"""The DDPM U-Net eps_theta(x_t, t) for small images (28x28, 32x32, 8x8).

Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020, Appendix B (a PixelCNN++-style
U-Net, Salimans et al. 2017): a sinusoidal embedding of t through a two-layer MLP; at each resolution
`num_res_blocks` residual blocks (GroupNorm, swish, 3x3 convolutions, the time embedding added between the
two convolutions, dropout) with self-attention at the resolutions in `attention_resolutions`; stride-2
convolutions down, nearest-neighbour upsampling plus a 3x3 convolution up, every down-path activation
concatenated into the up path; residual, attention and output projections start at zero, so the
network starts as eps_theta = 0 plus its skips.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jgen import train

__all__ = ["timestep_embedding", "ResBlock", "AttentionBlock", "UNet", "num_params"]


def timestep_embedding(t: jax.Array, dim: int, max_period: float = 10_000.0) -> jax.Array:
    """Transformer sinusoids of the step t: [sin(t w_k), cos(t w_k)], w_k = max_period^(-k / (dim / 2)).

    Vaswani et al. 2017, Sec. 3.5, as used by Ho et al. Args: t: [batch] steps (int or float);
    dim: even embedding width. Returns: float32[batch, dim].
    """
    if dim % 2:
        raise ValueError(f"the time embedding width must be even, got {dim}")
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = jnp.asarray(t, jnp.float32)[:, None] * freqs[None]
    return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)


def _group_norm(channels: int, num_groups: int) -> nn.GroupNorm:
    # Narrow test networks have fewer channels than groups; use the largest group count that divides.
    return nn.GroupNorm(num_groups=math.gcd(num_groups, channels))


class ResBlock(nn.Module):
    """h + F(h, temb): GN, swish, conv, + Dense(swish(temb)), GN, swish, dropout, zero-initialised conv.

    A 1x1 projection (Dense over channels) carries the skip when the width changes.
    """

    out_channels: int
    num_groups: int = 32
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, temb: jax.Array, train: bool) -> jax.Array:
        h = nn.Conv(self.out_channels, (3, 3))(nn.swish(_group_norm(x.shape[-1], self.num_groups)(x)))
        h = h + nn.Dense(self.out_channels)(nn.swish(temb))[:, None, None, :]
        h = nn.swish(_group_norm(self.out_channels, self.num_groups)(h))
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
        h = nn.Conv(self.out_channels, (3, 3), kernel_init=nn.initializers.zeros)(h)
        skip = x if x.shape[-1] == self.out_channels else nn.Dense(self.out_channels)(x)
        return skip + h


class AttentionBlock(nn.Module):
    """x + proj(softmax(q k^T / sqrt(C)) v) over the H * W positions, single head, after a GroupNorm."""

    num_groups: int = 32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b, hgt, wid, c = x.shape
        h = _group_norm(c, self.num_groups)(x).reshape(b, hgt * wid, c)
        q, k, v = (nn.Dense(c)(h) for _ in range(3))
        w = jax.nn.softmax(jnp.einsum("bic,bjc->bij", q, k) / math.sqrt(c), axis=-1)
        out = nn.Dense(c, kernel_init=nn.initializers.zeros)(jnp.einsum("bij,bjc->bic", w, v))
        return x + out.reshape(x.shape)


class UNet(nn.Module):
    """eps_theta(x_t, t): [batch, H, W, C] images and [batch] steps -> predicted noise [batch, H, W, C].

    H and W must be divisible by 2^(len(channel_mults) - 1): 28x28 with mults (1, 2, 2) runs at 28, 14, 7;
    32x32 with (1, 2, 2, 2) at 32, 16, 8, 4; an 8x8 input (7x7 MNIST padded) with (1, 2) at 8, 4.

    Attributes:
      channels: width of the first level; the time embedding is 4 * channels wide.
      channel_mults: width multiplier per resolution level (one level per entry).
      num_res_blocks: residual blocks per level on the way down (the way up has one more per level).
      attention_resolutions: spatial sizes (H) at which a self-attention block follows each residual block;
        the middle of the network (the lowest resolution) always has one.
      dropout: dropout rate inside the residual blocks (active when `train=True`: pass a "dropout" rng).
      num_groups: GroupNorm groups (reduced to a divisor of narrow widths).
    """

    channels: int = 32
    channel_mults: Sequence[int] = (1, 2, 2)
    num_res_blocks: int = 2
    attention_resolutions: Sequence[int] = (7,)
    dropout: float = 0.1
    num_groups: int = 32

    @nn.compact
    def __call__(self, x: jax.Array, t: jax.Array, train: bool = False) -> jax.Array:
        if x.ndim != 4 or t.shape != x.shape[:1]:
            raise ValueError(f"expected images [batch, H, W, C] and steps [batch], got {x.shape} and {t.shape}")
        factor = 2 ** (len(self.channel_mults) - 1)
        if x.shape[1] % factor or x.shape[2] % factor:
            raise ValueError(f"image size {x.shape[1]}x{x.shape[2]} is not divisible by 2^{len(self.channel_mults) - 1}"
                             f" = {factor} (one halving per level after the first of channel_mults="
                             f"{tuple(self.channel_mults)}); pad the images or use fewer levels")
        ch, g = self.channels, self.num_groups
        temb = timestep_embedding(t, ch)
        temb = nn.Dense(4 * ch)(nn.swish(nn.Dense(4 * ch)(temb)))

        def res(h, width):
            return ResBlock(width, g, self.dropout)(h, temb, train)

        def maybe_attend(h):
            return AttentionBlock(g)(h) if h.shape[1] in self.attention_resolutions else h

        h = nn.Conv(ch, (3, 3))(x)
        skips = [h]
        for level, mult in enumerate(self.channel_mults):
            for _ in range(self.num_res_blocks):
                h = maybe_attend(res(h, ch * mult))
                skips.append(h)
            if level < len(self.channel_mults) - 1:
                h = nn.Conv(h.shape[-1], (3, 3), strides=(2, 2))(h)
                skips.append(h)
        h = res(AttentionBlock(g)(res(h, h.shape[-1])), h.shape[-1])
        for level, mult in reversed(list(enumerate(self.channel_mults))):
            for _ in range(self.num_res_blocks + 1):
                h = maybe_attend(res(jnp.concatenate([h, skips.pop()], axis=-1), ch * mult))
            if level > 0:
                b, hgt, wid, c = h.shape
                h = nn.Conv(c, (3, 3))(jax.image.resize(h, (b, 2 * hgt, 2 * wid, c), "nearest"))
        h = nn.swish(_group_norm(h.shape[-1], g)(h))
        return nn.Conv(x.shape[-1], (3, 3), kernel_init=nn.initializers.zeros)(h)


def num_params(model: nn.Module, image_shape: Sequence[int]) -> int:
    """Number of trainable scalars of `model` on images [H, W, C], from shapes only (nothing is computed)."""
    x = jnp.zeros((1, *image_shape), jnp.float32)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), x, jnp.ones((1,), jnp.int32))
    return train.num_params(shapes["params"])
