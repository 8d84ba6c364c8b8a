"""Divergence, the known failure of EBM training: stop where it happens, name the last good checkpoint, and
optionally restart from there with a new seed.

An EBM diverges when the sampler stops keeping up with the energy: the gap E(real) - E(sampled) runs away,
the energies grow without bound, or turn NaN. `jgen.ebm.cd.make_step` turns its `energy_magnitude` metric to
+inf when the energies leave a bound, so `jgen.train.fit` stops at that step and keeps only checkpoints
written from good states; `fit` here turns that stop into a `DivergenceError` saying what happened, and with
`restarts > 0` resumes from the last good checkpoint with a new random seed into a run named
`<name>_restart<k>` (its own checkpoints and log rows), up to `restarts` times.
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp

from jgen import train
from jgen.ebm.cd import ENERGY_MAGNITUDE

__all__ = ["DivergenceError", "fit", "restart_name"]


class DivergenceError(train.NonFiniteLossError):
    """EBM training diverged; the message names the step, the last good checkpoint and what to do."""


def restart_name(name: str, k: int) -> str:
    """The run name of the `k`-th restart of run `name` (k = 0: the run itself)."""
    return name if k == 0 else f"{name}_restart{k}"


def _last_checkpoint(wd: Any, name: str) -> int | None:
    if wd is None or not wd.checkpoint_dir(name).is_dir():
        return None
    from jgen.checkpoints import CheckpointDir

    with CheckpointDir(wd.checkpoint_dir(name)) as ckpts:
        steps = ckpts.steps()
    return steps[-1] if steps else None


def _restore(wd: Any, name: str, template: train.TrainState) -> train.TrainState | None:
    from jgen.checkpoints import CheckpointDir

    with CheckpointDir(wd.checkpoint_dir(name)) as ckpts:
        restored = ckpts.restore(template)
    return None if restored is None else restored[1]


def _rows_until(wd: Any, name: str, last: int | None) -> list[dict]:
    """The training rows that run `name` logged up to step `last` (none when `last` is None)."""
    if last is None:
        return []
    return [{k: v for k, v in r.items() if k not in ("name", "kind")} for r in wd.read_log(name)
            if r.get("kind") != "eval" and r["step"] <= last]


def _reseed(state: train.TrainState, k: int) -> train.TrainState:
    key = jax.random.fold_in(jax.random.wrap_key_data(state.key), 1_000_003 * k)
    return state.replace(key=jax.random.key_data(key))


def fit(step, state: train.TrainState, batches, num_steps: int, *, wd=None, name: str = "train",
        energy_bound: float | None = None, restarts: int = 0, **fit_kwargs) -> train.FitResult:
    """`jgen.train.fit` for an EBM step that stops on divergence, with up to `restarts` restarts.

    Re-running with the same workdir resumes the newest restart directly (the run before it is not
    repeated). The returned history holds the rows of each earlier attempt up to its restart point, then
    those of the last one.

    Args:
      step, state, batches, num_steps, wd, name, **fit_kwargs: as for `jgen.train.fit`.
      energy_bound: the bound the step checks (only for the message).
      restarts: how many times to restart from the last good checkpoint with a new seed (needs `wd`).

    Raises:
      DivergenceError: the run diverged (a NaN/Inf metric or the energies out of bounds) and no restart
        is left; the message names the step and the last good checkpoint.
    """
    if restarts < 0:
        raise ValueError(f"restarts={restarts!r} must be >= 0")
    template = jax.device_get(state)  # host copy: `train.fit` donates the state's buffers
    attempt = 0
    if wd is not None:  # resume the newest restart that a previous process started
        while attempt < restarts and _last_checkpoint(wd, restart_name(name, attempt + 1)) is not None:
            attempt += 1
    earlier: list[dict] = []
    for k in range(attempt):  # a finished attempt's last checkpoint is where the next one started
        earlier += _rows_until(wd, restart_name(name, k), _last_checkpoint(wd, restart_name(name, k)))
    while True:
        run = restart_name(name, attempt)
        try:
            result = train.fit(step, state, batches, num_steps, wd=wd, name=run, **fit_kwargs)
        except train.NonFiniteLossError as e:
            found = re.search(r"step (\d+)", str(e))
            at = int(found.group(1)) if found else None
            good = _last_checkpoint(wd, run)
            what = (f"the energies left the bound |E| <= {energy_bound:g}" if energy_bound is not None and
                    ENERGY_MAGNITUDE in str(e) else "a metric became NaN/Inf")
            kept = (f"the last good checkpoint is step {good} in {wd.checkpoint_dir(run)}" if good is not None
                    else "no checkpoint had been written yet")
            if attempt >= restarts or wd is None:
                raise DivergenceError(
                    f"{run}: EBM training diverged at step {at} ({what}: {e}); {kept}. Restart from it with a "
                    f"new seed (restarts={restarts} used up: raise it, in a new workdir when running an "
                    "experiment), or make training steadier: lower the learning rate, raise alpha, or run "
                    "more Langevin steps per iteration.") from None
            earlier += _rows_until(wd, run, good)
            restored = _restore(wd, run, template) if good is not None else None
            attempt += 1
            state = _reseed(jax.tree.map(jnp.asarray, restored if restored is not None else template), attempt)
            continue
        return result._replace(history=earlier + result.history)
