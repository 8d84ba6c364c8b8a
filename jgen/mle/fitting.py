"""What the regression and graph fits share: a finite-data check and full-batch gradient ascent.

Both fits maximise a deterministic objective over the whole data set; every step is
`jgen.train.make_train_step` with the optimizer from `jgen.optim.make_optimizer(config.optim, num_steps)`,
and all steps run in one `lax.scan`.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np
import optax

from jgen import train

__all__ = ["check_finite", "ascend"]


def check_finite(name: str, values) -> None:
    """Raises a ValueError naming the first NaN/Inf entry of ``values`` (skipped for traced arrays)."""
    try:
        arr = np.asarray(values)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return  # inside a jit trace: the public entry points have checked the concrete data
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(
            f"{name} holds {arr[where]} at index {where} ({int(np.sum(~np.isfinite(arr)))} non-finite "
            f"entries in all); maximum likelihood needs finite data. Drop or impute those rows first.")


def ascend(neg_objective: Callable[[Any], jax.Array], params: Any, tx: optax.GradientTransformation,
           num_steps: int) -> tuple[Any, jax.Array]:
    """Minimises ``neg_objective(params)`` for ``num_steps`` steps of ``tx`` in one compiled ``lax.scan``.

    Args:
      neg_objective: scalar function of the parameters (the negative mean log-likelihood).
      params: starting parameters (pytree).
      tx: the optax transformation.
      num_steps: number of steps (>= 1).

    Returns:
      ``(params, values)``: the final parameters and ``values [num_steps]``, ``neg_objective`` before each step.
    """
    if int(num_steps) < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")

    def loss_fn(p, batch, rng):
        del batch, rng  # full batch and deterministic: the data are closed over
        return neg_objective(p), {}

    step = train.make_train_step(loss_fn, tx)

    @jax.jit
    def run(params):
        state = train.create_train_state(params, tx, jax.random.key(0))  # the key is never drawn from
        state, metrics = jax.lax.scan(step, state, None, length=int(num_steps))
        return state.params, metrics["loss"]

    return run(params)
