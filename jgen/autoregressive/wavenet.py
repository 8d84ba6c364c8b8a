"""WaveNet over raster-scanned images, with queue-cached fast generation.

The image is flattened in raster order into a sequence ``x_0 .. x_{T-1}`` of
pixel levels in ``{0, ..., num_levels - 1}`` and modelled as

    p(x) = prod_t Categorical(x_t | softmax(f_t(x_<t))).

The network reads the shifted sequence ``y_t = x_{t-1}`` (a start flag at
``t = 0``) through stacked causal dilated convolutions of kernel size 2 and
dilations 1, 2, 4, ..., so output ``t`` sees exactly ``y_0 .. y_t``, i.e.
``x_<t``. Each layer is a gated unit ``tanh(W_f * h) . sigmoid(W_g * h)`` with a
residual and a skip connection; the summed skips go through ReLU-1x1-ReLU-1x1 to
``num_levels`` logits (van den Oord et al., 2016).

Fast generation (Paine et al., 2016): a kernel-2 layer with dilation ``d`` needs
its input at ``t`` and ``t - d`` only. Each layer keeps a queue of its last ``d``
inputs (a circular buffer ``[batch, d, channels]``), so drawing a pixel costs
one step per layer instead of a forward pass over the whole sequence:
O(T * L) per image instead of O(T^2 * L).

References:
  van den Oord et al., "WaveNet: A Generative Model for Raw Audio", 2016.
  Paine et al., "Fast Wavenet Generation Algorithm", arXiv:1611.09482, 2016.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = [
    "default_dilations", "receptive_field", "WaveNet", "log_prob", "sample",
    "quantize",
]


def default_dilations(num_pixels: int) -> tuple[int, ...]:
    """Dilations 1, 2, 4, ..., 2^(k-1) with the fewest layers covering `num_pixels`.

    The receptive field of kernel-2 layers is ``1 + sum(dilations) = 2^k``; ``k``
    is the smallest value with ``2^k >= num_pixels``, so the last output sees
    every previous pixel.
    """
    if num_pixels < 1:
        raise ValueError(f"num_pixels must be >= 1, got {num_pixels}.")
    k = max(1, math.ceil(math.log2(num_pixels)))
    return tuple(2**i for i in range(k))


def receptive_field(dilations: Sequence[int]) -> int:
    """Number of shifted inputs ``y_{t-r+1} .. y_t`` that output t depends on."""
    return 1 + sum(dilations)


def quantize(x_uint8, num_levels: int) -> jax.Array:
    """Map 8-bit pixels 0..255 to `num_levels` equal-width levels 0..num_levels-1 (int32)."""
    if not 2 <= num_levels <= 256:
        raise ValueError(f"num_levels must be in [2, 256], got {num_levels}.")
    return (jnp.asarray(x_uint8, jnp.int32) * num_levels) // 256


class _GatedResidualBlock(nn.Module):
    """Kernel-2 dilated causal conv, gated tanh x sigmoid unit, residual and skip 1x1s.

    The kernel-2 convolution ``W_0 h_{t-d} + W_1 h_t + b`` is a Dense layer on the
    concatenation ``[h_{t-d}, h_t]``, so the full-sequence pass and the cached
    one-step pass use the same parameters and arithmetic.
    """

    channels: int
    skip_channels: int
    dilation: int

    def setup(self):
        self.dilated = nn.Dense(2 * self.channels, name="dilated_conv")
        self.residual = nn.Dense(self.channels, name="residual_1x1")
        self.skip = nn.Dense(self.skip_channels, name="skip_1x1")

    def gate(self, past, now):
        """past = h_{t-d}, now = h_t, both [..., channels] -> (h_next, skip)."""
        filt, gate = jnp.split(self.dilated(jnp.concatenate([past, now], -1)), 2, axis=-1)
        z = jnp.tanh(filt) * jax.nn.sigmoid(gate)
        return now + self.residual(z), self.skip(z)

    def __call__(self, h):
        """h: [batch, T, channels]; zero padding on the left keeps it causal."""
        past = jnp.pad(h, ((0, 0), (self.dilation, 0), (0, 0)))[:, : h.shape[1]]
        return self.gate(past, h)


class WaveNet(nn.Module):
    """Causal dilated-convolution model of a categorical pixel sequence.

    Attributes:
      num_pixels: sequence length T (49 for 7x7 images); sets the default
        dilations so that the receptive field covers all previous pixels.
      num_levels: number of pixel levels (256 for 8-bit; fewer after `quantize`).
      channels: residual channels.
      skip_channels: skip and output-head channels.
      dilations: per-layer dilations; default `default_dilations(num_pixels)`.
    """

    num_pixels: int
    num_levels: int = 256
    channels: int = 32
    skip_channels: int = 64
    dilations: tuple[int, ...] | None = None

    @property
    def layer_dilations(self) -> tuple[int, ...]:
        return tuple(self.dilations) if self.dilations else default_dilations(self.num_pixels)

    def setup(self):
        if self.num_levels < 2:
            raise ValueError(f"num_levels must be >= 2, got {self.num_levels}.")
        if any(d < 1 for d in self.layer_dilations):
            raise ValueError(f"dilations must be positive, got {self.layer_dilations}.")
        self.input_1x1 = nn.Dense(self.channels)
        self.blocks = [
            _GatedResidualBlock(self.channels, self.skip_channels, d)
            for d in self.layer_dilations
        ]
        self.head_hidden = nn.Dense(self.skip_channels)
        self.head_out = nn.Dense(self.num_levels)

    def _features(self, prev, is_start):
        """Input features [..., 2]: previous level scaled to [-1, 1] and a start flag."""
        value = 2.0 * prev / (self.num_levels - 1) - 1.0
        value = jnp.where(is_start, 0.0, value)
        return jnp.stack([value, is_start.astype(value.dtype)], axis=-1)

    def _head(self, skip_sum):
        return self.head_out(nn.relu(self.head_hidden(nn.relu(skip_sum))))

    def __call__(self, x):
        """Logits of every pixel given the previous ones (teacher forcing).

        Args:
          x: pixel levels [batch, T], int or float (float inputs allow gradients
            with respect to the pixel values, used by the causality test).

        Returns:
          float [batch, T, num_levels]; row t depends on x[:, :t] only.
        """
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.num_pixels:
            raise ValueError(
                f"WaveNet expects pixels [batch, {self.num_pixels}] in raster order; "
                f"got shape {x.shape}.")
        x = x.astype(jnp.float32)
        prev = jnp.pad(x, ((0, 0), (1, 0)))[:, :-1]
        is_start = jnp.zeros(x.shape, bool).at[:, 0].set(True)
        h = self.input_1x1(self._features(prev, is_start))
        skip_sum = 0.0
        for block in self.blocks:
            h, skip = block(h)
            skip_sum = skip_sum + skip
        return self._head(skip_sum)

    def init_cache(self, batch_size: int) -> tuple[jax.Array, ...]:
        """Per-layer queues of past layer inputs, zeros [batch, d, channels].

        Needs no parameters: call it on the unbound module, `model.init_cache(n)`.
        """
        return tuple(jnp.zeros((batch_size, d, self.channels), jnp.float32)
                     for d in self.layer_dilations)

    def step(self, cache, t, prev):
        """Logits of pixel t from the cache, one step per layer.

        Args:
          cache: from `init_cache` or the previous `step` (steps must run for
            t = 0, 1, 2, ... in order).
          t: int scalar, the position being generated.
          prev: [batch] level of pixel t-1 (ignored at t = 0).

        Returns:
          (new_cache, logits [batch, num_levels]).
        """
        prev = jnp.asarray(prev, jnp.float32)
        h = self.input_1x1(self._features(prev, jnp.broadcast_to(t == 0, prev.shape)))
        new_cache = []
        skip_sum = 0.0
        for block, queue in zip(self.blocks, cache):
            # Slot t mod d holds this layer's input from step t - d (zeros while t < d,
            # matching the zero padding of the full pass); replace it with step t's.
            slot = t % block.dilation
            past = jax.lax.dynamic_index_in_dim(queue, slot, axis=1, keepdims=False)
            new_cache.append(jax.lax.dynamic_update_index_in_dim(queue, h, slot, axis=1))
            h, skip = block.gate(past, h)
            skip_sum = skip_sum + skip
        return tuple(new_cache), self._head(skip_sum)


@functools.partial(jax.jit, static_argnames="model")
def log_prob(model: WaveNet, params, x) -> jax.Array:
    """Exact log p(x) in nats, float [batch], for integer levels x [batch, T]."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"log_prob expects integer pixel levels, got dtype {x.dtype}.")
    logits = model.apply(params, x)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(logp, x[..., None].astype(jnp.int32), axis=-1)[..., 0].sum(-1)


@functools.partial(jax.jit, static_argnames=("model", "num_samples", "cached"))
def sample(model: WaveNet, params, key, num_samples: int, *, cached: bool = True) -> jax.Array:
    """Ancestral sampling of `num_samples` sequences, int32 [num_samples, T].

    Pixel t is drawn with ``jax.random.categorical(split(key, T)[t], logits_t)``
    in both modes, so `cached=True` (one step per layer per pixel, Paine et al.
    2016) and `cached=False` (a full forward pass per pixel) return identical
    pixels for the same key.
    """
    num_pixels = model.num_pixels
    keys = jax.random.split(key, num_pixels)
    ts = jnp.arange(num_pixels)

    if cached:
        def body(state, inputs):
            cache, prev = state
            t, key_t = inputs
            cache, logits = model.apply(params, cache, t, prev, method=WaveNet.step)
            pixel = jax.random.categorical(key_t, logits).astype(jnp.int32)
            return (cache, pixel), pixel

        cache = model.init_cache(num_samples)
        start = jnp.zeros((num_samples,), jnp.int32)
        _, pixels = jax.lax.scan(body, (cache, start), (ts, keys))
        return pixels.T

    def naive_body(canvas, inputs):
        t, key_t = inputs
        logits = jax.lax.dynamic_index_in_dim(model.apply(params, canvas), t, axis=1, keepdims=False)
        pixel = jax.random.categorical(key_t, logits).astype(jnp.int32)
        return jax.lax.dynamic_update_index_in_dim(canvas, pixel, t, axis=1), None

    canvas = jnp.zeros((num_samples, num_pixels), jnp.int32)
    canvas, _ = jax.lax.scan(naive_body, canvas, (ts, keys))
    return canvas
