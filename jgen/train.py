"""Training: a train state, a jitted step built from a loss function and an optax transformation, and `fit`.

`fit` is the one training loop of jgen. It checkpoints with orbax every `ckpt_every` steps and at the end,
resumes from the latest checkpoint when called again with the same workdir, stops with
`NonFiniteLossError` naming the step when the loss turns NaN/Inf (the last good checkpoint stays), logs one
line per `log_every` steps to `log.jsonl`, and shows a tqdm bar with the running loss.

Data parallelism: pass a mesh (`jgen.sharding.data_mesh()`) and batches sharded along its `data` axis
(`jgen.data.BatchIterator(..., mesh=mesh)`); parameters are replicated and XLA inserts the gradient
all-reduce, so the same code runs on 1 device, N devices or many hosts.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Protocol

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jgen import progress as progress_lib

__all__ = [
    "TrainState", "NonFiniteLossError", "FitResult", "create_train_state", "make_train_step", "fit", "fit_loss",
    "FullBatch",
]

LossFn = Callable[[Any, Any, jax.Array], "tuple[jax.Array, Mapping[str, jax.Array]]"]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the step and the kept checkpoint."""


class TrainState(flax.struct.PyTreeNode):
    """Everything a training run needs to continue exactly where it stopped.

    Attributes:
      step: int32 scalar, number of optimizer steps taken.
      params: model parameters (pytree).
      opt_state: optax state.
      rng: raw PRNG key (uint32[2]); step `s` uses `fold_in(rng, s)`, so resumed runs draw the same numbers.
      ema_params: exponential moving average of params, or None.
      best_params: params with the lowest evaluation value so far (`keep_best`), or None.
      best_value: that lowest value (float32 scalar, +inf before the first evaluation), or None.
      best_step: the step at which `best_params` were taken (int32 scalar), or None.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array
    ema_params: Any = None
    best_params: Any = None
    best_value: Any = None
    best_step: Any = None


def create_train_state(params: Any, tx: optax.GradientTransformation, rng: jax.Array, *,
                       ema: bool = False, keep_best: bool = False) -> TrainState:
    """A fresh train state at step 0.

    Params and key are copied: the jitted step donates the state's buffers, and the caller's arrays must
    stay valid.
    """
    if jnp.issubdtype(jnp.asarray(rng).dtype, jax.dtypes.prng_key):
        rng = jax.random.key_data(rng)
    params = jax.tree.map(jnp.array, params)
    return TrainState(
        step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), rng=jnp.array(rng),
        ema_params=jax.tree.map(jnp.array, params) if ema else None,
        best_params=jax.tree.map(jnp.array, params) if keep_best else None,
        best_value=jnp.full((), jnp.inf, jnp.float32) if keep_best else None,
        best_step=jnp.zeros((), jnp.int32) if keep_best else None)


def make_train_step(loss_fn: LossFn, tx: optax.GradientTransformation, *, ema_decay: float | None = None,
                    fuse_steps: int = 1) -> Callable[[TrainState, Any], tuple[TrainState, dict]]:
    """Builds the jitted step `step(state, batch) -> (state, metrics)`.

    Args:
      loss_fn: `loss_fn(params, batch, rng) -> (loss, aux)`; `aux` is a dict of scalars to log.
      tx: the optax transformation (chain `optax.clip_by_global_norm` in front for gradient clipping).
      ema_decay: keep `ema_params = d * ema_params + (1 - d) * params` when given.
      fuse_steps: k > 1 runs k steps in one `lax.scan`; `batch` then has a leading axis of size k and the
        metrics come back with that leading axis. Worth it for small models, where dispatch dominates.

    Returns:
      The jitted step. Metrics hold `loss`, `grad_norm` and the entries of `aux`.
    """
    if fuse_steps < 1:
        raise ValueError(f"fuse_steps must be >= 1, got {fuse_steps}")

    def one_step(state: TrainState, batch):
        rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch, rng)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ema = state.ema_params
        if ema_decay is not None and ema is not None:
            ema = jax.tree.map(lambda e, p: ema_decay * e + (1.0 - ema_decay) * p, ema, params)
        metrics = {"loss": loss, "grad_norm": optax.global_norm(grads), **dict(aux or {})}
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema), metrics

    if fuse_steps == 1:
        return jax.jit(one_step, donate_argnums=0)
    return jax.jit(lambda state, batches: jax.lax.scan(one_step, state, batches), donate_argnums=0)


class BatchSource(Protocol):
    def iter_from(self, step: int) -> Iterator[Any]: ...


class FullBatch:
    """A batch source that yields the same batch (e.g. a whole small dataset) at every step."""

    def __init__(self, batch: Any):
        self.batch = jax.tree.map(jnp.asarray, batch)

    def iter_from(self, step: int) -> Iterator[Any]:
        while True:
            yield self.batch


class FitResult(NamedTuple):
    """What `fit` returns.

    Attributes:
      state: the final train state.
      params: best params if `keep_best`, else EMA params if `ema_decay`, else the final params.
      history: logged rows `{"step", "loss", ...}` of this run, resumed parts included, in step order.
      eval_history: rows `{"step", <eval metrics>}`.
    """

    state: TrainState
    params: Any
    history: list
    eval_history: list


def _stack(batches: list) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *batches)


def fit_loss(loss_fn: LossFn, params: Any, tx: optax.GradientTransformation, batches: BatchSource, num_steps: int,
        *, rng: jax.Array, wd=None, name: str = "train", log_every: int = 50, ckpt_every: int = 1000,
        eval_fn: Callable[[Any], Mapping[str, Any]] | None = None, eval_every: int | None = None,
        keep_best: bool = False, ema_decay: float | None = None, fuse_steps: int = 1, mesh=None,
        progress: bool = True, max_to_keep: int = 2) -> FitResult:
    """Trains `params` for `num_steps` optimizer steps, resumably.

    Args:
      loss_fn: `loss_fn(params, batch, rng) -> (loss, aux dict)`.
      params: initial parameters (ignored when a checkpoint is restored).
      tx: optax transformation.
      batches: object with `iter_from(step)` yielding batches (`jgen.data.BatchIterator`, `FullBatch`), so
        that a resumed run sees exactly the batches an uninterrupted one would.
      num_steps: total optimizer steps (not counting those already done when resuming).
      rng: PRNG key; step s uses fold_in(rng, s).
      wd: a `jgen.experiment.Workdir` for checkpoints and log.jsonl; None trains in memory only.
      name: name of this run inside the workdir (checkpoints/<name>, rows of log.jsonl).
      log_every: steps between logged rows (each the mean over the steps since the last row).
      ckpt_every: steps between checkpoints (one is always written at the end).
      eval_fn: `eval_fn(params) -> {metric: scalar}`, run every `eval_every` steps and at the end, on the
        EMA params when `ema_decay` is given (the model that is kept), else on the params.
      keep_best: keep the params with the lowest value of the first eval metric (needs eval_fn).
      ema_decay: also track an exponential moving average of the params.
      fuse_steps: run this many steps per jitted call (a `lax.scan`); must divide log/ckpt/eval intervals.
      mesh: a `jax.sharding.Mesh` to replicate the state over (batches should come sharded over it).
      progress: show a tqdm bar (only when stderr is a terminal).

    Raises:
      NonFiniteLossError: the loss was NaN/Inf at some step; checkpoints up to the last good one are kept.
    """
    if keep_best and eval_fn is None:
        raise ValueError("keep_best=True needs an eval_fn to rank parameters")
    eval_every = eval_every or num_steps
    for label, every in (("log_every", log_every), ("ckpt_every", ckpt_every), ("eval_every", eval_every)):
        if every <= 0 or (fuse_steps > 1 and every % fuse_steps and every != num_steps):
            raise ValueError(f"{label}={every} must be positive and a multiple of fuse_steps={fuse_steps}")
    state = create_train_state(params, tx, rng, ema=ema_decay is not None, keep_best=keep_best)
    history: list[dict] = []
    eval_history: list[dict] = []
    mgr = None
    last_saved = None  # step of the newest checkpoint on disk
    if wd is not None:
        import orbax.checkpoint as ocp  # imported lazily: heavy, and unused by in-memory training

        mgr = ocp.CheckpointManager(wd.checkpoint_dir(name), options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True))
        last_saved = mgr.latest_step()
    if last_saved is not None:
        state = mgr.restore(last_saved, args=ocp.args.StandardRestore(state))
        wd.truncate_log(name, last_saved)
        for row in wd.read_log(name):
            (eval_history if row.get("kind") == "eval" else history).append(
                {k: v for k, v in row.items() if k not in ("name", "kind")})
    if mesh is not None:
        from jgen.sharding import replicate

        state = replicate(state, mesh)

    step = int(state.step)
    train_step = make_train_step(loss_fn, tx, ema_decay=ema_decay, fuse_steps=fuse_steps)
    pending: list[tuple[int, dict]] = []  # (first step of the call, device metrics) not yet checked/logged

    def flush() -> None:
        """Fetches pending metrics, stops on a non-finite loss, logs the window mean."""
        if not pending:
            return
        fetched = jax.device_get([m for _, m in pending])
        rows = []
        for (first, _), m in zip(pending, fetched):
            losses = np.atleast_1d(np.asarray(m["loss"]))
            bad = np.flatnonzero(~np.isfinite(losses))
            if bad.size:
                where = (f"the last good checkpoint (step {last_saved}) is kept in {wd.checkpoint_dir(name)}"
                         if last_saved is not None else "no checkpoint had been written yet")
                raise NonFiniteLossError(
                    f"{name}: loss became {losses[bad[0]]} at step {first + int(bad[0]) + 1}; training stopped and "
                    f"{where}. Lower the learning rate, add gradient clipping, or check the data.")
            rows.append({k: np.atleast_1d(np.asarray(v, np.float64)) for k, v in m.items()})
        pending.clear()
        row = {"step": step, **{k: float(np.mean(np.concatenate([r[k] for r in rows]))) for k in rows[0]}}
        history.append(row)
        if wd is not None:
            wd.log(step, name, **{k: v for k, v in row.items() if k != "step"})
        bar.set_postfix(loss=f"{row['loss']:.4g}")

    def evaluate() -> None:
        nonlocal state
        params_now = state.params if ema_decay is None else state.ema_params
        values = {k: float(v) for k, v in eval_fn(params_now).items()}
        eval_history.append({"step": step, **values})
        if wd is not None:
            wd.log(step, name, kind="eval", **values)
        if keep_best:
            first = next(iter(values.values()))
            if math.isfinite(first) and first < float(state.best_value):
                state = state.replace(best_params=jax.tree.map(jnp.array, params_now),
                                      best_value=jnp.asarray(first, jnp.float32),
                                      best_step=jnp.asarray(step, jnp.int32))

    def save() -> None:
        nonlocal last_saved
        if mgr is None or last_saved == step:
            return
        mgr.save(step, args=ocp.args.StandardSave(state))
        mgr.wait_until_finished()
        last_saved = step

    bar = progress_lib.bar(total=num_steps, desc=name, initial=step, enabled=progress)
    try:
        if step < num_steps:
            it = iter(batches.iter_from(step))
            while step < num_steps:
                k = min(fuse_steps, num_steps - step)
                # A shorter fused tail (num_steps not a multiple of fuse_steps) compiles once more.
                batch = _stack([next(it) for _ in range(k)]) if fuse_steps > 1 else next(it)
                state, metrics = train_step(state, batch)
                pending.append((step, metrics))
                step += k
                bar.update(k)
                at_end = step >= num_steps
                if at_end or step % log_every == 0:
                    flush()
                if eval_fn is not None and (at_end or step % eval_every == 0):
                    flush()
                    evaluate()
                if at_end or step % ckpt_every == 0:
                    flush()
                    save()
        elif eval_fn is not None and not eval_history:
            evaluate()
    finally:
        bar.close()
        if mgr is not None:
            mgr.wait_until_finished()
            mgr.close()
    final = state.best_params if keep_best else state.ema_params if ema_decay is not None else state.params
    return FitResult(state, final, history, eval_history)


# Transition: `fit` is being rewritten to take a step function and a state; `fit_loss` keeps the loss-based API.
fit = fit_loss
