"""Orbax checkpoints of one training run that never hand back a broken one.

`CheckpointDir` wraps an `orbax.checkpoint.CheckpointManager`. Saves are atomic: orbax writes a step into
`<step>.orbax-checkpoint-tmp-*` and renames it when complete, so a run killed mid-save leaves only that
temporary directory, which is never listed as a step. `restore` takes the newest checkpoint that reads back
(and passes an optional `validate`); an unreadable one is named in a logged warning and moved aside to
`<step>.broken` (kept for inspection, out of the way of the step that will be written again), and the next
older one is tried. When none reads back, nothing is moved and `UnreadableCheckpointError` says how to start
over.

A state is written packed: its leaves as one flat array per dtype under `PACKED` (orbax's cost is per leaf,
about 2.5 ms each on the 2-core machine, so a U-Net's train state of ~500 leaves took 2.5 s per save; packed
it takes ~15 ms). `restore` unpacks into the target's structure, shapes and shardings, and still reads
checkpoints written leaf by leaf (by older jgen, or for a state holding typed PRNG keys, which are not packed).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

__all__ = ["CheckpointDir", "UnreadableCheckpointError", "PACKED"]

PACKED = "jgen_packed_v1"  # the top-level key of a packed checkpoint


def _packable(leaves) -> bool:
    return bool(leaves) and not any(jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) for x in leaves)


def _layout(tree: Any) -> np.ndarray:
    """A digest of the tree's paths, shapes and dtypes (uint8[32]): a packed checkpoint is unpacked only into
    the layout it was written from (leaf by leaf, orbax matched the paths; packed, a reordered tree of the
    same sizes would unpack silently wrong)."""
    entries = [(jax.tree_util.keystr(path), tuple(x.shape), np.dtype(x.dtype).name)
               for path, x in jax.tree_util.tree_leaves_with_path(tree)]
    return np.frombuffer(hashlib.sha256(repr(entries).encode()).digest(), np.uint8).copy()


def _pack(state: Any) -> Any:
    """`{PACKED: {dtype name: 1-D array, "layout": digest}}`: the leaves of `state` in tree order, ravelled and
    concatenated per dtype; `state` itself when it cannot be packed."""
    leaves = jax.tree.leaves(state)
    if not _packable(leaves):
        return state
    groups: dict[str, list[np.ndarray]] = {}
    for x in jax.device_get(leaves):
        x = np.asarray(x)
        groups.setdefault(x.dtype.name, []).append(x.ravel())
    return {PACKED: {**{name: np.concatenate(parts) for name, parts in groups.items()}, "layout": _layout(state)}}


def _spec(x) -> tuple[np.dtype, int]:
    """A leaf's dtype and number of elements: where its values sit in a packed checkpoint."""
    return np.dtype(x.dtype), int(np.prod(x.shape, dtype=np.int64))


def _packed_target(target: Any) -> dict:
    sizes: dict[np.dtype, int] = {}
    for x in jax.tree.leaves(target):
        dtype, size = _spec(x)
        sizes[dtype] = sizes.get(dtype, 0) + size
    return {PACKED: {**{dtype.name: np.zeros(n, dtype) for dtype, n in sizes.items()},
                     "layout": np.zeros(32, np.uint8)}}


def _unpack(packed: dict, target: Any) -> Any:
    """The inverse of `_pack`: `target`'s structure, with each leaf on the target leaf's sharding."""
    if not np.array_equal(np.asarray(packed[PACKED]["layout"]), _layout(target)):
        raise ValueError("the checkpoint was written from a state of another structure (paths, shapes or dtypes)")
    leaves, treedef = jax.tree.flatten(target)
    offsets = dict.fromkeys(packed[PACKED], 0)
    out = []
    for x in leaves:
        dtype, size = _spec(x)
        name = dtype.name
        value = np.asarray(packed[PACKED][name][offsets[name]:offsets[name] + size]).reshape(x.shape)
        offsets[name] += size
        out.append(jax.device_put(value, x.sharding) if isinstance(x, jax.Array) else value)
    return jax.tree.unflatten(treedef, out)


class UnreadableCheckpointError(RuntimeError):
    """No checkpoint of a run could be read back; the message says how to start over."""


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


class CheckpointDir:
    """The orbax checkpoints of one run: `save(step, state)`, `restore(target)`, `close()` (or `with`).

    Args:
      directory: the run's checkpoint directory (created when missing).
      max_to_keep: number of newest checkpoints kept; older ones are deleted by orbax.
    """

    def __init__(self, directory: str | Path, *, max_to_keep: int = 2):
        import orbax.checkpoint as ocp  # imported lazily: heavy, and unused by in-memory training

        self._ocp = ocp
        self.directory = Path(directory)
        # The handler named up front: item_metadata (packed or not) is then readable before the first restore.
        self._mgr = ocp.CheckpointManager(self.directory, options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True), item_handlers=ocp.StandardCheckpointHandler())

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints on disk, oldest first."""
        return sorted(self._mgr.all_steps())

    def save(self, step: int, state: Any) -> None:
        """Writes `state` as checkpoint `step` and waits until it is committed."""
        self._mgr.save(int(step), args=self._ocp.args.StandardSave(_pack(state)))
        self._mgr.wait_until_finished()

    def restore(self, target: Any, *, validate: Callable[[Any], str | None] | None = None
                ) -> tuple[int, Any] | None:
        """The newest checkpoint that reads back into `target`'s structure, as `(step, state)`.

        Args:
          target: a pytree with the structure, shapes and dtypes of the saved state.
          validate: `validate(state) -> None` when usable, else a short reason (e.g. "params hold NaN");
            a checkpoint that fails it is treated like an unreadable one.

        Returns:
          `(step, state)`, or None when there is no checkpoint yet.

        Raises:
          UnreadableCheckpointError: there are checkpoints but none is usable (chained to the last error); they
            are left in place.
        """
        failed: list[tuple[int, str]] = []
        last_exc: BaseException | None = None
        for step in reversed(self.steps()):
            try:
                state = self._restore_step(step, target)
                reason = validate(state) if validate is not None else None
            except Exception as e:  # orbax/TensorStore raise bare Exceptions for truncated or garbled files
                state, reason, last_exc = None, _one_line(e), e
            if reason is None:
                if failed:
                    moved = [f"checkpoint {s} could not be used ({r}) and was moved aside to {self._move_aside(s)}"
                             for s, r in failed]
                    logging.warning(f"{self.directory}: {'; '.join(moved)}; resuming from checkpoint {step}")
                return step, state
            failed.append((step, reason))
        if not failed:
            return None
        raise UnreadableCheckpointError(
            f"no checkpoint in {self.directory} can be used ("
            f"{'; '.join(f'checkpoint {s}: {r}' for s, r in failed)}). To start over, delete that directory "
            "(or the whole workdir) or run with a new --workdir.") from last_exc

    def _restore_step(self, step: int, target: Any) -> Any:
        if PACKED in self._mgr.item_metadata(step):
            if not _packable(jax.tree.leaves(target)):
                raise ValueError("the checkpoint is packed but the target holds typed PRNG keys or no arrays")
            packed = self._mgr.restore(step, args=self._ocp.args.StandardRestore(_packed_target(target)))
            return _unpack(packed, target)
        return self._mgr.restore(step, args=self._ocp.args.StandardRestore(target))

    def _move_aside(self, step: int) -> str:
        """Renames checkpoint `step` to `<step>.broken` and returns that name."""
        # Renamed rather than deleted: a read error may be transient, and the files may help explain it.
        src = Path(self._ocp.step.find_step_path(self.directory, self._ocp.step.standard_name_format(), step=step))
        dst, n = self.directory / f"{step}.broken", 1
        while dst.exists():
            n += 1
            dst = self.directory / f"{step}.broken-{n}"
        if jax.process_index() == 0:
            src.rename(dst)
        self._mgr.reload()
        return dst.name

    def close(self) -> None:
        """Waits for pending writes and releases orbax's threads."""
        self._mgr.wait_until_finished()
        self._mgr.close()

    def __enter__(self) -> "CheckpointDir":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
