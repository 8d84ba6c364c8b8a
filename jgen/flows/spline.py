"""Rational-quadratic spline coupling layers (neural spline flows) as `distrax.MaskedCoupling`.

With a binary mask m (True = kept), one layer maps every transformed coordinate by its own monotone
rational-quadratic spline whose parameters are a function of the kept coordinates,

    y_i = x_i                          (m_i = 1),
    y_i = g_{theta_i(m * x)}(x_i)      (m_i = 0),
    log|det dy/dx| = sum_{i: m_i = 0} log g'_{theta_i}(x_i).

Each g has K bins on [-B, B] (`boundary`): K bin widths, K bin heights and K + 1 knot slopes, so the
conditioner emits `3 K + 1` unconstrained numbers per coordinate (`distrax.RationalQuadraticSpline`
normalises them). The boundary knots have slope 1 and g is the identity outside [-B, B] (the "linear
tails" of Durkan et al., Sec. 3.3), so B must cover the values the layer sees: the data and the base
samples it is mapped from. All-zero parameters give the identity everywhere, so a conditioner whose last
layer starts at zero starts the flow at the identity.

References:
  Durkan, Bekasov, Murray & Papamakarios, 2019, "Neural Spline Flows".
  Gregory & Delbourgo, 1982, "Piecewise rational quadratic interpolation to monotonic data".
"""

from typing import Callable

import distrax
import jax.numpy as jnp

__all__ = ["spline_params_per_dim", "spline_coupling"]

Array = jnp.ndarray


def spline_params_per_dim(num_bins: int) -> int:
    """`3 K + 1`: unconstrained parameters of one K-bin rational-quadratic spline."""
    if not isinstance(num_bins, int) or num_bins < 1:
        raise ValueError(f"num_bins must be a positive integer; got {num_bins!r}.")
    return 3 * num_bins + 1


def spline_coupling(mask: Array, conditioner: Callable[[Array], Array], num_bins: int = 8,
                    boundary: float = 4.0, min_bin_size: float = 1e-4,
                    min_knot_slope: float = 1e-4) -> distrax.MaskedCoupling:
    """Coupling bijector whose transformed coordinates go through K-bin rational-quadratic splines.

    Args:
      mask: bool `[*event_shape]`, True where the input is passed through unchanged and fed to the
        conditioner.
      conditioner: maps the masked input `[..., *event_shape]` to `[..., *event_shape, 3 K + 1]`
        unconstrained spline parameters (bin widths, bin heights, knot slopes).
      num_bins: K.
      boundary: B; the splines act on [-B, B] and are the identity outside it.
      min_bin_size: smallest bin width and height (numerical stability).
      min_knot_slope: smallest derivative at a knot (numerical stability).

    Returns:
      A `distrax.MaskedCoupling` with `event_ndims = mask.ndim`.
    """
    mask = jnp.asarray(mask)
    if mask.dtype != jnp.bool_:
        raise ValueError(f"mask must be boolean (True = kept); got dtype {mask.dtype}.")
    size = spline_params_per_dim(num_bins)
    if not boundary > 0:
        raise ValueError(f"the spline boundary B must be positive (the range is [-B, B]); got {boundary}.")

    def inner(params: Array) -> distrax.RationalQuadraticSpline:
        if params.shape[-1] != size:
            raise ValueError(f"the conditioner must return [..., *event_shape, 3 K + 1] = [..., {size}] "
                             f"spline parameters for K = {num_bins}; got shape {params.shape}.")
        return distrax.RationalQuadraticSpline(params, -boundary, boundary, boundary_slopes="identity",
                                               min_bin_size=min_bin_size, min_knot_slope=min_knot_slope)

    return distrax.MaskedCoupling(mask=mask, conditioner=conditioner, bijector=inner)
