"""Training: a train state, a one-step function, and `fit`, the one training loop of jgen.

A training step is a pure, unjitted function `step(state, batch) -> (state, metrics)` over a `TrainState`;
`make_train_step(loss_fn, tx)` builds the usual one (a gradient step on a loss, optionally with an EMA of the
params), and a family with more moving parts (two players, a replay buffer, a tracked average) writes its
own and keeps what it carries in `state.extra`.

`fit(step, state, batches, num_steps)` owns everything around the step: it jits it (donating the state),
fuses `fuse_steps` steps into one `lax.scan` over `[k, batch, ...]` blocks built on the host, logs one row
per `log_every` steps to `log.jsonl`, evaluates, keeps the best params, shows a progress bar, checkpoints
with orbax every `ckpt_every` steps and at the end, and resumes exactly from the newest readable checkpoint
(`jgen.checkpoints`) when called again with the same workdir. It stops with `NonFiniteLossError` naming the
step when a metric turns NaN/Inf, and with `NonFiniteStateError` when a checkpoint is due and the state has
turned NaN/Inf under finite metrics (a NaN gradient with a finite loss): a checkpoint is only ever written
from a finite state, so the one the message names as the last good one is.

`fit_loss(loss_fn, params, tx, batches, num_steps, key=...)` is the convenience for the common case:
`create_train_state` + `make_train_step` + `fit`.

Data parallelism: pass a mesh (`jgen.sharding.data_mesh()`) and batches sharded along its `data` axis
(`jgen.data.BatchIterator(..., mesh=mesh)`); the state is replicated and XLA inserts the gradient
all-reduce, so the same code runs on 1 device, N devices or many hosts.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Protocol

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jgen import progress as progress_lib

__all__ = [
    "TrainState", "NonFiniteLossError", "NonFiniteStateError", "FitResult", "create_train_state",
    "make_train_step", "model_params", "fit", "fit_loss", "FullBatch", "num_params",
]

LossFn = Callable[[Any, Any, jax.Array], "tuple[jax.Array, Mapping[str, jax.Array]]"]
StepFn = Callable[["TrainState", Any], "tuple[TrainState, Mapping[str, jax.Array]]"]


class NonFiniteLossError(FloatingPointError):
    """A logged metric (the loss) became NaN or infinite; the message names the step and the kept checkpoint."""


class NonFiniteStateError(NonFiniteLossError):
    """The state (params, optimizer state, EMA or extra) became NaN/Inf while the metrics stayed finite."""


class TrainState(flax.struct.PyTreeNode):
    """Everything a training run needs to continue exactly where it stopped (all of it is checkpointed).

    Attributes:
      step: int32 scalar, number of steps taken; a step function returns it incremented by one.
      params: model parameters (pytree).
      opt_state: optax state.
      key: raw PRNG key (uint32[2]); step `s` uses `fold_in(key, s)`, so resumed runs draw the same numbers.
      ema_params: exponential moving average of (some of) the params, or None.
      best_params: the evaluated params with the lowest evaluation value so far (`keep_best`), or None.
      best_value: that lowest value (float32 scalar, +inf before the first evaluation), or None.
      best_step: the step at which `best_params` were taken (int32 scalar), or None.
      extra: anything else a step carries from one call to the next (a replay buffer, a second player's
        params and optimizer state, a tracked average latent), or None.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    key: jax.Array
    ema_params: Any = None
    best_params: Any = None
    best_value: Any = None
    best_step: Any = None
    extra: Any = None


def create_train_state(params: Any, tx: optax.GradientTransformation, key: jax.Array, *, ema: bool = False,
                       keep_best: bool = False, extra: Any = None) -> TrainState:
    """A fresh train state at step 0.

    Params, key and extra are copied: `fit` donates the state's buffers, and the caller's arrays must stay
    valid.

    Args:
      params: initial parameters.
      tx: optax transformation; its state is `tx.init(params)`.
      key: PRNG key (typed or raw).
      ema: start `ema_params` at the params.
      keep_best: allocate `best_params`, `best_value` (+inf) and `best_step` (`fit` also does it on demand).
      extra: initial value of the free `extra` pytree.
    """
    if jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    params = jax.tree.map(jnp.array, params)
    state = TrainState(
        step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), key=jnp.array(key),
        ema_params=jax.tree.map(jnp.array, params) if ema else None,
        extra=jax.tree.map(jnp.array, extra))
    return _with_best(state) if keep_best else state


def model_params(state: TrainState) -> Any:
    """The params a run evaluates and keeps: the EMA params when tracked, else the params."""
    return state.params if state.ema_params is None else state.ema_params


def _with_best(state: TrainState) -> TrainState:
    if state.best_params is not None:
        return state
    return state.replace(best_params=jax.tree.map(jnp.array, model_params(state)),
                         best_value=jnp.full((), jnp.inf, jnp.float32), best_step=jnp.zeros((), jnp.int32))


def make_train_step(loss_fn: LossFn, tx: optax.GradientTransformation, *,
                    ema_decay: float | None = None) -> StepFn:
    """The default one-step function: a gradient step on `loss_fn` (unjitted; `fit` jits and fuses it).

    With `ema_decay = d` the state's `ema_params` track `d * ema_params + (1 - d) * params`
    (`optax.incremental_update`, Polyak averaging).

    Args:
      loss_fn: `loss_fn(params, batch, key) -> (loss, aux)`; `aux` is a dict of scalars to log, and `key`
        is `fold_in(state.key, state.step)`.
      tx: the optax transformation (`jgen.optim.make_optimizer`).
      ema_decay: keep an EMA of the params when given (the state needs `ema_params`).

    Returns:
      `step(state, batch) -> (state, metrics)`; metrics hold `loss`, `grad_norm` and the entries of `aux`.
    """

    def step(state: TrainState, batch):
        key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch, key)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ema = state.ema_params
        if ema_decay is not None and ema is not None:
            # = (1 - d) * params + d * ema, in the operand order of jgen's earlier EMA (same bits under FMA).
            ema = optax.incremental_update(ema, params, ema_decay)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), **dict(aux or {})}
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema), metrics

    return step


class BatchSource(Protocol):
    """Batches by step index, so that a resumed run sees exactly the batches an uninterrupted one would.

    `iter_from(step)` yields batches `step, step + 1, ...`; a source that also takes `fuse=k` yields
    `[k, batch, ...]` blocks of k consecutive batches, built on the host and transferred once (else `fit`
    stacks k batches itself).
    """

    def iter_from(self, step: int) -> Iterator[Any]: ...


class FullBatch:
    """A batch source that yields the same batch (e.g. a whole small dataset) at every step."""

    def __init__(self, batch: Any):
        self.batch = jax.tree.map(jnp.asarray, batch)
        self._host = jax.tree.map(np.asarray, self.batch)

    def iter_from(self, step: int, fuse: int | None = None) -> Iterator[Any]:
        """Yields the batch forever, or with `fuse=k` the `[k, ...]` block of k copies (transferred once)."""
        block = self.batch if fuse is None else jax.device_put(
            jax.tree.map(lambda x: np.broadcast_to(x, (fuse, *x.shape)), self._host))
        while True:
            yield block


class FitResult(NamedTuple):
    """What `fit` returns.

    Attributes:
      state: the final train state.
      params: best params if `keep_best`, else `model_params(state)` (EMA params if tracked, else params).
      history: logged rows `{"step", "loss", ...}` of this run, resumed parts included, in step order.
      eval_history: rows `{"step", <eval metrics>}`.
    """

    state: TrainState
    params: Any
    history: list
    eval_history: list


def _blocks(batches: BatchSource, start: int, k: int | None) -> Iterator[Any]:
    """Batches from `start`, or `[k, ...]` blocks of k consecutive ones."""
    if k is None:
        return iter(batches.iter_from(start))
    if "fuse" in inspect.signature(batches.iter_from).parameters:
        return iter(batches.iter_from(start, fuse=k))

    def stacked():
        it = iter(batches.iter_from(start))
        try:
            while True:
                group = [next(it) for _ in range(k)]
                yield jax.tree.map(lambda *xs: np.stack(xs) if isinstance(xs[0], np.ndarray) else jnp.stack(xs),
                                   *group)
        except StopIteration:
            return
        finally:
            _close(it)

    return stacked()


def _close(it: Any) -> None:
    """Stops a batch generator (and its prefetch thread) that will not be read to the end."""
    if hasattr(it, "close"):
        it.close()


def _interval(label: str, every: Any, fuse_steps: int) -> int:
    """A positive interval, rounded up to a multiple of `fuse_steps` (events fall between fused blocks)."""
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every <= 0:
        raise ValueError(f"{label}={every!r} is not valid: expected a positive whole number of steps.")
    return -(-int(every) // fuse_steps) * fuse_steps


_STATE_PARTS = ("params", "opt_state", "ema_params", "best_params", "extra")


@jax.jit
def _finite_parts(state: TrainState) -> dict[str, jax.Array]:
    """Whether each part of the state holds only finite floats (one bool per part, reduced on device)."""

    def finite(tree) -> jax.Array:
        leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
        return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)

    return {part: finite(getattr(state, part)) for part in _STATE_PARTS}


def _non_finite_parts(state: TrainState) -> list[str]:
    finite = jax.device_get(_finite_parts(state))
    return [part for part in _STATE_PARTS if not finite[part]]


def fit(step: StepFn, state: TrainState, batches: BatchSource, num_steps: int, *, wd=None, name: str = "train",
        log_every: int = 50, ckpt_every: int = 1000,
        eval_fn: Callable[[TrainState], Mapping[str, Any]] | None = None, eval_every: int | None = None,
        keep_best: bool = False, fuse_steps: int = 1, mesh=None, progress: bool = True,
        max_to_keep: int = 2) -> FitResult:
    """Runs `step` until `state.step == num_steps`, resumably.

    Intervals are rounded up to a multiple of `fuse_steps` (log, evaluation and checkpoint fall between
    fused blocks; e.g. `ckpt_every=250` with `fuse_steps=100` checkpoints every 300 steps); the end of the
    run always logs, evaluates and checkpoints.

    Args:
      step: `step(state, batch) -> (state, metrics)`, pure and unjitted; it must return `state.step + 1`.
        `metrics` is a dict of scalars; every one must stay finite (the run stops otherwise).
      state: the initial `TrainState` (ignored when a checkpoint is restored, but its structure is the
        restore target). Its buffers are donated: do not use it after the call.
      batches: a `BatchSource` (`jgen.data.BatchIterator`, `FullBatch`): `iter_from(step)` and, for fused
        steps, preferably `iter_from(step, fuse=k)`. It must not run out before `num_steps`.
      num_steps: total number of steps, counting those already done when resuming.
      wd: a `jgen.experiment.Workdir` for checkpoints and log.jsonl; None trains in memory only.
      name: name of this run inside the workdir (checkpoints/<name>, rows of log.jsonl).
      log_every: steps between logged rows (each the mean over the steps since the last row).
      ckpt_every: steps between checkpoints (one is always written at the end).
      eval_fn: `eval_fn(state) -> {metric: scalar}`, run every `eval_every` steps (default: at the end
        only) and at the end.
      keep_best: keep `model_params(state)` with the lowest value of the first eval metric in
        `state.best_params` (needs eval_fn).
      fuse_steps: run this many steps per jitted call (a `lax.scan`); worth it for small models, where
        dispatch dominates. A shorter tail block (num_steps not a multiple) compiles once more.
      mesh: a `jax.sharding.Mesh` to replicate the state over (batches should come sharded over it).
      progress: show a tqdm bar (only when stderr is a terminal).
      max_to_keep: number of newest checkpoints kept.

    Returns:
      A `FitResult`.

    Raises:
      NonFiniteLossError: a metric was NaN/Inf at some step; the checkpoints written before stay.
      NonFiniteStateError: the state was NaN/Inf when a checkpoint was due; none was written from it.
      jgen.checkpoints.UnreadableCheckpointError: checkpoints exist but none can be read back.
    """
    if not isinstance(state, TrainState):
        raise TypeError(f"fit needs a jgen.train.TrainState (carry anything else in its `extra` field), got "
                        f"{type(state).__name__}")
    if keep_best and eval_fn is None:
        raise ValueError("keep_best=True needs an eval_fn to rank parameters")
    if isinstance(fuse_steps, bool) or not isinstance(fuse_steps, (int, np.integer)) or fuse_steps < 1:
        raise ValueError(f"fuse_steps={fuse_steps!r} is not valid: expected a whole number of steps >= 1.")
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 0:
        raise ValueError(f"num_steps={num_steps!r} is not valid: expected a whole number of steps >= 0.")
    log_every = _interval("log_every", log_every, fuse_steps)
    ckpt_every = _interval("ckpt_every", ckpt_every, fuse_steps)
    eval_every = _interval("eval_every", max(num_steps, 1) if eval_every is None else eval_every, fuse_steps)
    if keep_best:
        state = _with_best(state)

    history: list[dict] = []
    eval_history: list[dict] = []
    ckpts = None
    last_saved = None  # step of the newest checkpoint on disk; every checkpoint written or kept is finite
    if wd is not None:
        from jgen.checkpoints import CheckpointDir

        def usable(restored: TrainState) -> str | None:
            bad = _non_finite_parts(restored)
            return f"{', '.join(bad)} hold NaN/Inf" if bad else None

        ckpts = CheckpointDir(wd.checkpoint_dir(name), max_to_keep=max_to_keep)
        try:
            restored = ckpts.restore(state, validate=usable)
        except BaseException:
            ckpts.close()
            raise
        if restored is not None:
            last_saved, state = restored
            wd.truncate_log(name, last_saved)
            for row in wd.read_log(name):
                (eval_history if row.get("kind") == "eval" else history).append(
                    {k: v for k, v in row.items() if k not in ("name", "kind")})
    if mesh is not None:
        from jgen.sharding import replicate

        state = replicate(state, mesh)

    done = int(state.step)
    if fuse_steps == 1:
        run_block = jax.jit(step, donate_argnums=0)
    else:
        run_block = jax.jit(lambda s, block: jax.lax.scan(step, s, block), donate_argnums=0)
    pending: list[tuple[int, dict]] = []  # (first step of the call, device metrics) not yet checked/logged

    def kept() -> str:
        if last_saved is None:
            return "no checkpoint had been written yet"
        return f"the last good checkpoint (step {last_saved}) is kept in {wd.checkpoint_dir(name)}"

    def flush() -> None:
        """Fetches pending metrics, stops on a non-finite one, logs the window mean."""
        if not pending:
            return
        fetched, counter = jax.device_get(([m for _, m in pending], state.step))
        if int(counter) != done:
            raise ValueError(f"{name}: after {done} steps state.step is {int(counter)}; a step function must "
                             "return state.replace(step=state.step + 1, ...)")
        rows = []
        for (first, _), m in zip(pending, fetched):
            m = {k: np.atleast_1d(np.asarray(v, np.float64)) for k, v in m.items()}
            for key in sorted(m, key=lambda k: k != "loss"):  # name the loss first when it is among them
                bad = np.flatnonzero(~np.isfinite(m[key]))
                if bad.size:
                    raise NonFiniteLossError(
                        f"{name}: {key} became {m[key][bad[0]]} at step {first + int(bad[0]) + 1}; training "
                        f"stopped and {kept()}. Lower the learning rate, add gradient clipping, or check the data.")
            rows.append(m)
        pending.clear()
        row = {"step": done, **{k: float(np.mean(np.concatenate([r[k] for r in rows]))) for k in rows[0]}}
        history.append(row)
        if wd is not None:
            wd.log(done, name, **{k: v for k, v in row.items() if k != "step"})
        if "loss" in row:
            bar.set_postfix(loss=f"{row['loss']:.4g}")

    def evaluate() -> None:
        nonlocal state
        values = {k: float(v) for k, v in eval_fn(state).items()}
        eval_history.append({"step": done, **values})
        if wd is not None:
            wd.log(done, name, kind="eval", **values)
        # The best params live in the state, not in orbax's best_fn: orbax ranks only saved steps, and its
        # max_to_keep would then evict the newest checkpoint that an exact resume needs.
        if keep_best:
            first = next(iter(values.values()))
            if math.isfinite(first) and first < float(state.best_value):
                state = state.replace(best_params=jax.tree.map(jnp.array, model_params(state)),
                                      best_value=jnp.asarray(first, jnp.float32),
                                      best_step=jnp.asarray(done, jnp.int32))

    def save() -> None:
        nonlocal last_saved
        if ckpts is None or last_saved == done:
            return
        bad = _non_finite_parts(state)
        if bad:
            raise NonFiniteStateError(
                f"{name}: {', '.join(bad)} became NaN/Inf by step {done} although the logged metrics were "
                f"finite, so no checkpoint was written from that state; {kept()}. Look for a NaN gradient "
                "(sqrt or log at 0, a division by a vanishing norm), lower the learning rate, or add "
                "gradient clipping.")
        ckpts.save(done, state)
        last_saved = done

    bar = progress_lib.bar(total=num_steps, desc=name, initial=done, enabled=progress)
    blocks = None
    try:
        if done < num_steps:
            k = None if fuse_steps == 1 else min(fuse_steps, num_steps - done)
            blocks = _blocks(batches, done, k)
            while done < num_steps:
                if k is not None and k > num_steps - done:
                    _close(blocks)
                    k = num_steps - done
                    blocks = _blocks(batches, done, k)
                try:
                    batch = next(blocks)
                except StopIteration:
                    raise ValueError(f"{name}: the batches ran out at step {done} of {num_steps}; fit needs a "
                                     "source that lasts the whole run (e.g. BatchIterator(repeat=True))") from None
                state, metrics = run_block(state, batch)
                pending.append((done, metrics))
                done += k or 1
                bar.update(k or 1)
                at_end = done >= num_steps
                if at_end or done % log_every == 0:
                    flush()
                if eval_fn is not None and (at_end or done % eval_every == 0):
                    flush()
                    evaluate()
                if at_end or done % ckpt_every == 0:
                    flush()
                    save()
        elif eval_fn is not None and not eval_history:
            evaluate()
    finally:
        _close(blocks)
        bar.close()
        if ckpts is not None:
            ckpts.close()
            # Dropped so that a traceback holding this frame does not keep the closed manager alive (its late
            # finalizer would hit orbax's closed event loop).
            ckpts = None
    final = state.best_params if keep_best else model_params(state)
    return FitResult(state, final, history, eval_history)


def fit_loss(loss_fn: LossFn, params: Any, tx: optax.GradientTransformation, batches: BatchSource,
             num_steps: int, *, key: jax.Array, wd=None, name: str = "train", log_every: int = 50,
             ckpt_every: int = 1000, eval_fn: Callable[[Any], Mapping[str, Any]] | None = None,
             eval_every: int | None = None, keep_best: bool = False, ema_decay: float | None = None,
             fuse_steps: int = 1, mesh=None, progress: bool = True, max_to_keep: int = 2) -> FitResult:
    """Minimises `loss_fn` over `params` with `tx` for `num_steps` steps: `fit` with `make_train_step`.

    Args:
      loss_fn: `loss_fn(params, batch, key) -> (loss, aux dict)`.
      params: initial parameters (ignored when a checkpoint is restored).
      tx: optax transformation (`jgen.optim.make_optimizer`).
      batches, num_steps, wd, name, log_every, ckpt_every, eval_every, keep_best, fuse_steps, mesh,
        progress, max_to_keep: as in `fit`.
      key: PRNG key; step s uses fold_in(key, s).
      eval_fn: `eval_fn(params) -> {metric: scalar}`, called on the EMA params when `ema_decay` is given
        (the model that is kept), else on the params.
      ema_decay: also track an exponential moving average of the params (`jgen.optim.ema_decay`).
    """
    if keep_best and eval_fn is None:
        raise ValueError("keep_best=True needs an eval_fn to rank parameters")
    state = create_train_state(params, tx, key, ema=ema_decay is not None, keep_best=keep_best)
    return fit(make_train_step(loss_fn, tx, ema_decay=ema_decay), state, batches, num_steps, wd=wd, name=name,
               log_every=log_every, ckpt_every=ckpt_every,
               eval_fn=None if eval_fn is None else lambda s: eval_fn(model_params(s)), eval_every=eval_every,
               keep_best=keep_best, fuse_steps=fuse_steps, mesh=mesh, progress=progress, max_to_keep=max_to_keep)


def num_params(tree: Any) -> int:
    """Number of scalars in a parameter tree (arrays or `jax.ShapeDtypeStruct`s)."""
    return int(sum(math.prod(x.shape) for x in jax.tree.leaves(tree)))
