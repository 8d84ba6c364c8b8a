"""Orbax checkpoints of one training run that never hand back a broken one.

`CheckpointDir` wraps an `orbax.checkpoint.CheckpointManager`. Saves are atomic: orbax writes a step into
`<step>.orbax-checkpoint-tmp-*` and renames it when complete, so a run killed mid-save leaves only that
temporary directory, which is never listed as a step. `restore` takes the newest checkpoint that reads back
(and passes an optional `validate`); an unreadable one is named in a logged warning and moved aside to
`<step>.broken` (kept for inspection, out of the way of the step that will be written again), and the next
older one is tried. When none reads back, nothing is moved and `UnreadableCheckpointError` says how to start
over.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import jax

__all__ = ["CheckpointDir", "UnreadableCheckpointError"]


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
        self._mgr = ocp.CheckpointManager(self.directory, options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True))

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints on disk, oldest first."""
        return sorted(self._mgr.all_steps())

    def save(self, step: int, state: Any) -> None:
        """Writes `state` as checkpoint `step` and waits until it is committed."""
        self._mgr.save(int(step), args=self._ocp.args.StandardSave(state))
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
                state = self._mgr.restore(step, args=self._ocp.args.StandardRestore(target))
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
