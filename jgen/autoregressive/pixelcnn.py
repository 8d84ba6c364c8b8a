"""Gated PixelCNN with vertical and horizontal stacks (no blind spot).

Models a single-channel image of ``num_levels`` pixel levels in raster order,
``p(x) = prod_{i,j} Categorical(x_ij | x_<(i,j))``.

A plain stack of masked 3x3 convolutions never sees the pixels up and to the
right of the current one (the "blind spot"). The gated PixelCNN splits each
layer into two stacks (van den Oord et al., 2016):

* the vertical stack sees every pixel in the rows strictly above, over the
  kernel width (mask A: rows above only; mask B: also its own row, which at that
  point only carries information from the rows above);
* the horizontal stack sees the pixels to the left in the current row (mask A:
  strictly left, for the first layer; mask B: also the current position) plus
  the vertical stack at the same position, through a 1x1 link.

Each stack uses the gated unit ``tanh(W_f * x) . sigmoid(W_g * x)``; the
horizontal stack has a residual 1x1. The output head reads the horizontal stack.
With ``num_layers`` layers, a first kernel ``k1`` and later kernels ``k``, the
receptive field reaches ``k1 // 2 + (num_layers - 1) * (k // 2)`` rows up and
columns left/right: choose it at least ``max(H, W) - 1`` to see every previous
pixel (checked by gradients in the tests).

References:
  van den Oord et al., "Pixel Recurrent Neural Networks", ICML 2016.
  van den Oord et al., "Conditional Image Generation with PixelCNN Decoders",
  NeurIPS 2016 (gated PixelCNN).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["causal_masks", "GatedMaskedLayer", "GatedPixelCNN", "log_prob", "sample"]


def causal_masks(kernel_size: int, mask_type: str) -> tuple[np.ndarray, np.ndarray]:
    """Vertical [k, k] and horizontal [1, k] 0/1 kernel masks for mask type "A" or "B"."""
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}.")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}.")
    c = kernel_size // 2
    include_centre = mask_type == "B"
    vertical = np.zeros((kernel_size, kernel_size), np.float32)
    vertical[: c + include_centre, :] = 1.0
    horizontal = np.zeros((1, kernel_size), np.float32)
    horizontal[0, : c + include_centre] = 1.0
    return vertical, horizontal


def _gate(z):
    filt, gate = jnp.split(z, 2, axis=-1)
    return jnp.tanh(filt) * jax.nn.sigmoid(gate)


class GatedMaskedLayer(nn.Module):
    """One gated layer: (v, h) [batch, H, W, C_in] -> (v, h) [batch, H, W, channels].

    Attributes:
      channels: output channels of both stacks.
      kernel_size: odd kernel size k (vertical k x k, horizontal 1 x k).
      mask_type: "A" for the first layer (excludes the current pixel), else "B".
    """

    channels: int
    kernel_size: int = 3
    mask_type: str = "B"

    @nn.compact
    def __call__(self, v, h):
        vmask, hmask = causal_masks(self.kernel_size, self.mask_type)
        k, c_in = self.kernel_size, v.shape[-1]
        vmask = np.broadcast_to(vmask[:, :, None, None], (k, k, c_in, 2 * self.channels))
        hmask = np.broadcast_to(hmask[:, :, None, None], (1, k, c_in, 2 * self.channels))
        v_pre = nn.Conv(2 * self.channels, (k, k), mask=jnp.asarray(vmask), name="vertical_conv")(v)
        h_pre = nn.Conv(2 * self.channels, (1, k), mask=jnp.asarray(hmask), name="horizontal_conv")(h)
        # v_pre at (i, j) only depends on rows < i, so it can feed the horizontal stack unshifted.
        h_pre = h_pre + nn.Dense(2 * self.channels, name="vertical_to_horizontal")(v_pre)
        h_out = nn.Dense(self.channels, name="horizontal_1x1")(_gate(h_pre))
        if self.mask_type == "B":
            h_out = h_out + h
        return _gate(v_pre), h_out


class GatedPixelCNN(nn.Module):
    """Gated PixelCNN over single-channel images with a categorical output per pixel.

    Attributes:
      num_levels: pixel levels (256 for 8-bit).
      channels: channels of both stacks.
      num_layers: gated layers (1 mask-A layer, then mask-B layers).
      first_kernel_size: odd kernel of the mask-A layer (7 in the paper).
      kernel_size: odd kernel of the mask-B layers.
      head_channels: width of the ReLU-1x1 output head.
    """

    num_levels: int = 256
    channels: int = 32
    num_layers: int = 5
    first_kernel_size: int = 7
    kernel_size: int = 3
    head_channels: int = 64

    @nn.compact
    def __call__(self, x):
        """Logits of every pixel given the previous ones in raster order.

        Args:
          x: pixel levels [batch, H, W] or [batch, H, W, 1], int or float (float
            inputs allow gradients with respect to the pixel values).

        Returns:
          float [batch, H, W, num_levels]; entry (i, j) depends only on pixels
          before (i, j) in raster order.
        """
        x = _as_images(x).astype(jnp.float32)
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {self.num_layers}.")
        # Second channel is constant 1 so the zero padding is distinguishable from a mid-grey pixel.
        feats = jnp.stack([2.0 * x / (self.num_levels - 1) - 1.0, jnp.ones_like(x)], axis=-1)
        v, h = GatedMaskedLayer(self.channels, self.first_kernel_size, "A")(feats, feats)
        for _ in range(self.num_layers - 1):
            v, h = GatedMaskedLayer(self.channels, self.kernel_size, "B")(v, h)
        out = nn.Dense(self.head_channels)(nn.relu(h))
        return nn.Dense(self.num_levels)(nn.relu(out))


def _as_images(x) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise ValueError(
            "GatedPixelCNN expects single-channel images [batch, H, W] or [batch, H, W, 1]; "
            f"got shape {x.shape}.")
    return x


@functools.partial(jax.jit, static_argnames="model")
def log_prob(model: GatedPixelCNN, params, x) -> jax.Array:
    """Exact log p(x) in nats, float [batch], for integer levels x [batch, H, W(, 1)]."""
    x = _as_images(x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"log_prob expects integer pixel levels, got dtype {x.dtype}.")
    logp = jax.nn.log_softmax(model.apply(params, x), axis=-1)
    ll = jnp.take_along_axis(logp, x[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return ll.sum(axis=(1, 2))


@functools.partial(jax.jit, static_argnames=("model", "num_samples", "shape"))
def sample(model: GatedPixelCNN, params, key, num_samples: int, shape: tuple[int, int]) -> jax.Array:
    """Ancestral sampling in raster order, one full forward pass per pixel.

    Pixel t (raster index) is drawn with ``jax.random.split(key, H * W)[t]``.

    Returns:
      int32 [num_samples, H, W] levels.
    """
    height, width = shape
    keys = jax.random.split(key, height * width)

    def body(canvas, inputs):
        t, key_t = inputs
        i, j = t // width, t % width
        logits = model.apply(params, canvas)[:, i, j]
        pixel = jax.random.categorical(key_t, logits).astype(jnp.int32)
        return canvas.at[:, i, j].set(pixel), None

    canvas = jnp.zeros((num_samples, height, width), jnp.int32)
    canvas, _ = jax.lax.scan(body, canvas, (jnp.arange(height * width), keys))
    return canvas
