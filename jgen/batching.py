"""Applying a jitted function to an array too big for one call: fixed-size chunks, the last one padded.

A jitted function compiles once per input shape. Feeding it `x[s:s + b]` compiles again for the short last
chunk; padding that chunk to `b` rows (repeating its last row) and dropping the padded outputs keeps one
compilation for any `len(x)`.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["map_batches"]


def map_batches(fn: Callable[..., Any], x: Any, batch_size: int, *args: Any) -> Any:
    """`fn(chunk, *args)` over `batch_size`-row chunks of `x` [n, ...], outputs concatenated along axis 0.

    Args:
      fn: `fn(chunk [batch_size, ...], *args) -> pytree of arrays [batch_size, ...]` (row i of each output
        depends on row i of the chunk only, so padded rows can be dropped).
      x: [n, ...] array, n >= 1.
      batch_size: rows per call; every call sees exactly this many.
      *args: passed unchanged to every call.

    Returns:
      The pytree of `fn`'s outputs as numpy arrays with n rows.
    """
    x = np.asarray(x)
    if len(x) == 0 or batch_size < 1:
        raise ValueError(f"map_batches needs at least one row and batch_size >= 1; got {len(x)} rows, "
                         f"batch_size={batch_size}")
    outs = []
    for s in range(0, len(x), batch_size):
        chunk = x[s:s + batch_size]
        keep = len(chunk)
        if keep < batch_size:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - keep, axis=0)])
        outs.append(jax.tree.map(lambda a: np.asarray(a)[:keep], fn(jnp.asarray(chunk), *args)))
    return jax.tree.map(lambda *a: np.concatenate(a), *outs)
