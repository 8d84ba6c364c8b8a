"""Affine coupling layers (RealNVP) as `distrax.MaskedCoupling`, and their masks.

With a binary mask m (True = kept), one layer maps

    y = m * x + (1 - m) * (x * exp(s(m * x)) + t(m * x)),
    log|det dy/dx| = sum_{i: m_i = 0} s_i(m * x),

which for the half mask is y_{1:j} = x_{1:j},
y_{j+1:d} = exp(s(x_{1:j})) * x_{j+1:d} + t(x_{1:j}). The log-scale is bounded,
s = b * tanh(s_raw / b), so one step can scale by at most exp(+-b) and training
cannot blow up. Masks alternate between layers so every coordinate is
transformed.

References:
  Dinh, Sohl-Dickstein & Bengio, 2017, "Density estimation using Real NVP".
"""

from typing import Callable

import distrax
import jax.numpy as jnp
import numpy as np

__all__ = ["bounded_log_scale", "affine_coupling", "half_mask", "checkerboard_mask",
           "channel_mask", "alternating_masks"]

Array = jnp.ndarray


def bounded_log_scale(raw: Array, bound: float) -> Array:
    """`bound * tanh(raw / bound)`: identity near 0, saturating at +-bound."""
    if bound <= 0:
        raise ValueError(f"log_scale_bound must be positive; got {bound}.")
    return bound * jnp.tanh(raw / bound)


def affine_coupling(mask: Array, conditioner: Callable[[Array], Array],
                    log_scale_bound: float = 3.0) -> distrax.MaskedCoupling:
    """Affine coupling bijector with elementwise shift and bounded log-scale.

    Args:
      mask: bool `[*event_shape]`, True where the input is passed through
        unchanged and fed to the conditioner.
      conditioner: maps the masked input `[..., *event_shape]` to
        `[..., *event_shape, 2]` = (shift, raw log-scale).
      log_scale_bound: b in `s = b * tanh(s_raw / b)`.

    Returns:
      A `distrax.MaskedCoupling` with `event_ndims = mask.ndim`.
    """
    mask = jnp.asarray(mask)
    if mask.dtype != jnp.bool_:
        raise ValueError(f"mask must be boolean (True = kept); got dtype {mask.dtype}.")

    def inner(params: Array) -> distrax.ScalarAffine:
        return distrax.ScalarAffine(shift=params[..., 0],
                                    log_scale=bounded_log_scale(params[..., 1], log_scale_bound))

    return distrax.MaskedCoupling(mask=mask, conditioner=conditioner, bijector=inner)


def half_mask(size: int, parity: int = 0) -> np.ndarray:
    """Bool `[size]`: first `ceil(size / 2)` kept (parity 0) or the rest kept (parity 1)."""
    if size < 2:
        raise ValueError(f"a coupling layer needs at least 2 dimensions; got size={size}.")
    m = np.arange(size) < (size + 1) // 2
    return m if parity % 2 == 0 else ~m


def checkerboard_mask(event_shape: tuple, parity: int = 0) -> np.ndarray:
    """Bool `[H, W, C]`: True where (row + col + parity) is even, same for every channel."""
    if len(event_shape) != 3:
        raise ValueError(f"checkerboard masks need an image event shape (H, W, C); got {event_shape}.")
    h, w, c = event_shape
    board = (np.arange(h)[:, None] + np.arange(w)[None, :] + parity) % 2 == 0
    return np.broadcast_to(board[:, :, None], (h, w, c)).copy()


def channel_mask(event_shape: tuple, parity: int = 0) -> np.ndarray:
    """Bool `[H, W, C]`: the first `C // 2` channels kept (parity 0) or the rest (parity 1)."""
    if len(event_shape) != 3 or event_shape[-1] < 2:
        raise ValueError(f"channel masks need an image event shape (H, W, C) with C >= 2; got {event_shape}.")
    h, w, c = event_shape
    m = np.arange(c) < c // 2
    m = m if parity % 2 == 0 else ~m
    return np.broadcast_to(m, (h, w, c)).copy()


def alternating_masks(kind: str, event_shape: tuple, num_layers: int) -> np.ndarray:
    """Bool `[num_layers, *event_shape]`: masks of one kind whose parity alternates per layer.

    Args:
      kind: "half" (vectors, `event_shape = (D,)`), "checkerboard" or "channel"
        (images, `event_shape = (H, W, C)`).
      event_shape: shape of one data point.
      num_layers: number of coupling layers.
    """
    makers = {"half": lambda p: half_mask(_vector_size(event_shape), p),
              "checkerboard": lambda p: checkerboard_mask(tuple(event_shape), p),
              "channel": lambda p: channel_mask(tuple(event_shape), p)}
    if kind not in makers:
        raise ValueError(f"mask kind must be one of {sorted(makers)}; got {kind!r}.")
    return np.stack([makers[kind](k) for k in range(num_layers)])


def _vector_size(event_shape: tuple) -> int:
    if len(event_shape) != 1:
        raise ValueError(f"'half' masks need a vector event shape (D,); got {tuple(event_shape)}.")
    return int(event_shape[0])
