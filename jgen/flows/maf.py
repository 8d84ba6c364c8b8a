"""Masked autoregressive flow (MAF) and inverse autoregressive flow (IAF) bijectors.

distrax has no autoregressive bijector, so this is a `distrax.Bijector`
subclass. In distrax's convention `forward` maps noise to data (sampling) and
`inverse` maps data to noise (density). For a MAF with conditioner outputs
(mu(x), s(x)) that depend on x_{<i} only (a MADE),

    density  (distrax inverse, one pass):   z = (x - mu(x)) * exp(-s(x)),
                                            log|det dz/dx| = -sum_i s_i(x);
    sampling (distrax forward, sequential): x_i = z_i * exp(s_i(x_{<i})) + mu_i(x_{<i}).

Sampling is a `lax.scan` of D conditioner passes: iterating
x <- z * exp(s(x)) + mu(x) from x = 0 fixes one more coordinate of the
autoregressive order per pass, whatever the order is. An IAF is the same
bijector inverted: sampling in one pass, density sequential.

References:
  Papamakarios, Pavlakou & Murray, 2017, "Masked Autoregressive Flow for Density Estimation".
  Kingma et al., 2016, "Improved Variational Inference with Inverse Autoregressive Flow".
"""

from typing import Callable, Tuple

import distrax
import jax
import jax.numpy as jnp

from jgen.flows.coupling import bounded_log_scale

__all__ = ["MaskedAutoregressive", "inverse_autoregressive"]

Array = jnp.ndarray


class MaskedAutoregressive(distrax.Bijector):
    """MAF layer on vectors (`event_ndims = 1`).

    Args:
      conditioner: autoregressive map `[..., D] -> [..., D, 2]` giving
        (shift, raw log-scale); output d must depend only on inputs before d in
        some order (e.g. `jgen.flows.MADE`).
      log_scale_bound: b in `s = b * tanh(s_raw / b)`.
    """

    def __init__(self, conditioner: Callable[[Array], Array], log_scale_bound: float = 3.0):
        if log_scale_bound <= 0:
            raise ValueError(f"log_scale_bound must be positive; got {log_scale_bound}.")
        super().__init__(event_ndims_in=1)
        self._conditioner = conditioner
        self._bound = log_scale_bound

    @property
    def conditioner(self) -> Callable[[Array], Array]:
        return self._conditioner

    def _shift_and_log_scale(self, x: Array) -> Tuple[Array, Array]:
        params = self._conditioner(x)
        if params.shape[-2:] != (x.shape[-1], 2):
            raise ValueError(f"conditioner must return [..., D, 2] = [..., {x.shape[-1]}, 2]; got {params.shape}.")
        return params[..., 0], bounded_log_scale(params[..., 1], self._bound)

    def inverse_and_log_det(self, y: Array) -> Tuple[Array, Array]:
        """Data -> noise in one conditioner pass: `z = (y - mu) exp(-s)`, log-det `-sum s`."""
        self._check_inverse_input_shape(y)
        shift, log_scale = self._shift_and_log_scale(y)
        return (y - shift) * jnp.exp(-log_scale), -jnp.sum(log_scale, axis=-1)

    def forward_and_log_det(self, x: Array) -> Tuple[Array, Array]:
        """Noise -> data, D sequential conditioner passes (a `lax.scan`), log-det `sum s`."""
        self._check_forward_input_shape(x)
        z = x

        def step(carry, _):
            y, _ = carry
            shift, log_scale = self._shift_and_log_scale(y)
            return (z * jnp.exp(log_scale) + shift, log_scale), None

        # After pass k the first k coordinates in the order are exact; the last
        # pass saw exact inputs for every coordinate, so its log-scales are exact.
        init = (jnp.zeros_like(z), jnp.zeros_like(z))
        (y, log_scale), _ = jax.lax.scan(step, init, None, length=z.shape[-1])
        return y, jnp.sum(log_scale, axis=-1)


def inverse_autoregressive(conditioner: Callable[[Array], Array],
                           log_scale_bound: float = 3.0) -> distrax.Inverse:
    """IAF layer: `distrax.Inverse` of a MAF; sampling in one pass, density sequential.

    Forward (noise -> data): `y = (z - mu(z)) * exp(-s(z))` with (mu, s)
    autoregressive in z.
    """
    return distrax.Inverse(MaskedAutoregressive(conditioner, log_scale_bound))
