"""A chain of identically structured bijectors applied with `lax.scan`.

`distrax.Chain` unrolls its layers, so compile time grows with depth. When
every layer is built by the same function from its own slice of a stacked
pytree (parameters, masks), one `lax.scan` traces a single layer whatever the
depth.
"""

from typing import Any, Callable, Tuple

import distrax
import jax
import jax.numpy as jnp

__all__ = ["ScanChain"]

Array = jnp.ndarray
PyTree = Any


class ScanChain(distrax.Bijector):
    """`f = f_{K-1} o ... o f_1 o f_0` with `f_k = make_layer(stacked[k])`.

    Layers are listed in sampling order: `forward` applies layer 0 first, so
    this equals `distrax.Chain([f_{K-1}, ..., f_0])`.

    Args:
      make_layer: builds one bijector from one slice of `stacked`.
      stacked: pytree whose leaves have a leading axis of size K (the layers).
      event_ndims: event rank of every layer (in = out).
    """

    def __init__(self, make_layer: Callable[[PyTree], distrax.Bijector], stacked: PyTree,
                 event_ndims: int):
        sizes = {leaf.shape[0] for leaf in jax.tree_util.tree_leaves(stacked)}
        if len(sizes) != 1:
            raise ValueError("all leaves of `stacked` need the same leading (layer) axis; "
                             f"got sizes {sorted(sizes)}.")
        super().__init__(event_ndims_in=event_ndims)
        self._make_layer = make_layer
        self._stacked = stacked
        self._num_layers = sizes.pop()

    @property
    def num_layers(self) -> int:
        return self._num_layers

    def layer(self, k: int) -> distrax.Bijector:
        """The k-th layer as a stand-alone bijector."""
        return self._make_layer(jax.tree_util.tree_map(lambda a: a[k], self._stacked))

    def _scan(self, x: Array, inverse: bool) -> Tuple[Array, Array, Array]:
        def step(carry, xs):
            h, log_det = carry
            layer = self._make_layer(xs)
            h_new, ld = layer.inverse_and_log_det(h) if inverse else layer.forward_and_log_det(h)
            h_new = h_new.astype(h.dtype)
            return (h_new, log_det + ld.astype(log_det.dtype)), h_new

        batch_shape = x.shape[:x.ndim - self.event_ndims_in]
        init = (x, jnp.zeros(batch_shape, x.dtype))
        (y, log_det), each = jax.lax.scan(step, init, self._stacked, reverse=inverse)
        return y, log_det, each

    def forward_and_log_det(self, x: Array) -> Tuple[Array, Array]:
        self._check_forward_input_shape(x)
        y, log_det, _ = self._scan(x, inverse=False)
        return y, log_det

    def inverse_and_log_det(self, y: Array) -> Tuple[Array, Array]:
        self._check_inverse_input_shape(y)
        x, log_det, _ = self._scan(y, inverse=True)
        return x, log_det

    def forward_each_layer(self, x: Array) -> Array:
        """`[K, *x.shape]`: the output after layers 0, 1, ..., K-1."""
        self._check_forward_input_shape(x)
        return self._scan(x, inverse=False)[2]
