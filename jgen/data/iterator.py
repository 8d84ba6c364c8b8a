"""`BatchIterator`: deterministic, resumable mini-batches of in-memory arrays, placed on device(s).

Batch `k` is a pure function of `(seed, k)`: epoch `e = k // steps_per_epoch` shuffles with a permutation
drawn from `(seed, e)`, so `iter_from(k)` resumes a run exactly where a checkpoint at step `k` left it.
For fused training steps (`jgen.train.fit(fuse_steps=k)`), `iter_from(step, fuse=k)` yields `[k, batch, ...]`
blocks of k consecutive batches, stacked on the host and transferred in one go.
With a mesh, the batch axis is split along the `data` axis; with several processes each host gathers only
its own slice of every global batch and the global `jax.Array` is assembled from the processes' parts.
A background thread prepares the next batches (gather + transfer) while the caller computes.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Iterator, Mapping

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jgen import sharding

__all__ = ["BatchIterator"]

_DONE = object()


class _Raised:
    def __init__(self, exc: BaseException):
        self.exc = exc


class BatchIterator:
    """Shuffled mini-batches of a dict of equal-length arrays, on device.

    Example:
      >>> data = jgen.data.load("mnist")                                   # doctest: +SKIP
      >>> it = BatchIterator(data, 128, seed=0)                            # doctest: +SKIP
      >>> for step, batch in zip(range(1000), it): ...                     # doctest: +SKIP
      >>> for batch in it.iter_from(500): ...   # identical to skipping 500 batches  # doctest: +SKIP
      >>> block = next(it.iter_from(0, fuse=10))   # {"image": [10, 128, ...]}: batches 0..9  # doctest: +SKIP

    Args:
      arrays: `{name: array[N, ...]}`, all with the same leading size N (numpy arrays; kept on the host).
      batch_size: global batch size (over all devices and processes).
      seed: seed of the per-epoch permutations.
      shuffle: shuffle every epoch (else batches follow the array order).
      drop_remainder: drop the last incomplete batch of each epoch (else yield it, smaller).
      repeat: cycle through epochs forever (else stop after one epoch).
      mesh: optional `jax.sharding.Mesh` with a `data` axis (`jgen.sharding.data_mesh()`); batches are then
        global arrays split along their leading axis over that axis.
      prefetch: number of batches prepared ahead by a background thread (0: no thread, no look-ahead).
      device: device for unsharded batches (default: `jax.devices()[0]`); ignored with a mesh.
    """

    def __init__(self, arrays: Mapping[str, Any], batch_size: int, *, seed: int = 0, shuffle: bool = True,
                 drop_remainder: bool = True, repeat: bool = True, mesh: jax.sharding.Mesh | None = None,
                 prefetch: int = 2, device: jax.Device | None = None):
        if not isinstance(arrays, Mapping) or not arrays:
            raise ValueError("arrays must be a non-empty dict {name: array[N, ...]}")
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        sizes = {k: (v.shape[0] if v.ndim else None) for k, v in self.arrays.items()}
        if len(set(sizes.values())) != 1 or None in sizes.values():
            raise ValueError(f"all arrays need the same leading (example) axis, got sizes {sizes}")
        self.num_examples = next(iter(sizes.values()))
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.batch_size = int(batch_size)
        if drop_remainder and self.num_examples < self.batch_size:
            raise ValueError(f"batch_size {batch_size} exceeds the {self.num_examples} examples with "
                             "drop_remainder=True (no batch would be produced)")
        if prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {prefetch}")
        self.seed, self.shuffle, self.drop_remainder, self.repeat = int(seed), shuffle, drop_remainder, repeat
        self.mesh, self.prefetch, self.device = mesh, int(prefetch), device
        full, rem = divmod(self.num_examples, self.batch_size)
        self.steps_per_epoch = full if drop_remainder or rem == 0 else full + 1
        if mesh is not None:
            self._check_mesh(mesh, [self.batch_size] + ([rem] if rem and not drop_remainder else []))
        self._perm_cache: tuple[int, np.ndarray] | None = None

    @staticmethod
    def _check_mesh(mesh: jax.sharding.Mesh, sizes: list[int]) -> None:
        if sharding.DATA_AXIS not in mesh.axis_names:
            raise ValueError(f"mesh needs a {sharding.DATA_AXIS!r} axis, got axes {mesh.axis_names}")
        n_dev, n_proc = mesh.devices.size, jax.process_count()
        for b in sizes:
            if b % n_dev or b % n_proc:
                raise ValueError(f"batch of {b} examples cannot be split evenly over {n_dev} devices / {n_proc} "
                                 "processes; use a batch size divisible by the device count (and drop_remainder=True)")

    def __len__(self) -> int:
        if self.repeat:
            raise TypeError("a repeating BatchIterator is infinite; use steps_per_epoch")
        return self.steps_per_epoch

    # --- host side ----------------------------------------------------------------------------------------
    def permutation(self, epoch: int) -> np.ndarray:
        """Example order of `epoch`: a permutation drawn from `(seed, epoch)` (identity without shuffle)."""
        if not self.shuffle:
            return np.arange(self.num_examples)
        if self._perm_cache is None or self._perm_cache[0] != epoch:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(epoch)]))
            self._perm_cache = (epoch, rng.permutation(self.num_examples))
        return self._perm_cache[1]

    def indices(self, step: int) -> np.ndarray:
        """Global example indices of batch `step` (over all processes)."""
        epoch, i = divmod(int(step), self.steps_per_epoch)
        return self.permutation(epoch)[i * self.batch_size:(i + 1) * self.batch_size]

    def host_batch(self, step: int) -> dict[str, np.ndarray]:
        """This process's part of batch `step` as numpy arrays (the whole batch with one process)."""
        idx = self.indices(step)
        if self.mesh is not None and jax.process_count() > 1:
            n, p = jax.process_count(), jax.process_index()
            per = len(idx) // n
            idx = idx[p * per:(p + 1) * per]
        if not self.shuffle:  # contiguous: slicing avoids a gather
            return {k: v[idx[0]:idx[-1] + 1] for k, v in self.arrays.items()}
        return {k: np.take(v, idx, axis=0) for k, v in self.arrays.items()}

    def host_block(self, steps: range) -> dict[str, np.ndarray]:
        """This process's parts of batches `steps`, stacked: `{name: [len(steps), batch, ...]}`."""
        parts = [self.host_batch(s) for s in steps]
        return {k: np.stack([p[k] for p in parts]) for k in self.arrays}

    # --- device side --------------------------------------------------------------------------------------
    def _place(self, batch: dict[str, np.ndarray], batch_axis: int = 0) -> dict[str, jax.Array]:
        if self.mesh is None:
            return jax.device_put(batch, self.device)
        if batch_axis == 0:
            return sharding.shard_batch(batch, self.mesh)
        spec = NamedSharding(self.mesh, PartitionSpec(*[None] * batch_axis, sharding.DATA_AXIS))
        return {k: jax.make_array_from_process_local_data(spec, v) for k, v in batch.items()}

    def _steps(self, start: int) -> Iterator[int]:
        step = start
        while self.repeat or step < self.steps_per_epoch:
            yield step
            step += 1

    def _host_items(self, start: int, fuse: int | None) -> Iterator[tuple[dict[str, np.ndarray], int]]:
        """(host batch or `[fuse, batch, ...]` block, its batch axis) from step `start` on."""
        if fuse is None:
            for s in self._steps(start):
                yield self.host_batch(s), 0
            return
        s = start
        while self.repeat or s < self.steps_per_epoch:
            end = s + fuse if self.repeat else min(s + fuse, self.steps_per_epoch)
            yield self.host_block(range(s, end)), 1
            s = end

    def iter_from(self, step: int = 0, fuse: int | None = None) -> Iterator[dict[str, jax.Array]]:
        """Yields batches `step, step + 1, ...`; equal to skipping the first `step` batches of `iter(self)`.

        Args:
          step: index of the first batch.
          fuse: yield `[fuse, batch, ...]` blocks of that many consecutive batches instead (the last block
            of a non-repeating iterator holds what is left of the epoch).
        """
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"step must be a non-negative int, got {step!r}")
        if fuse is not None:
            if isinstance(fuse, bool) or not isinstance(fuse, (int, np.integer)) or fuse < 1:
                raise ValueError(f"fuse must be None or a positive int, got {fuse!r}")
            if not self.drop_remainder and self.num_examples % self.batch_size:
                raise ValueError("fused blocks stack equal-size batches: use drop_remainder=True (the last batch "
                                 f"of each epoch has {self.num_examples % self.batch_size} of {self.batch_size} "
                                 "examples)")
            fuse = int(fuse)
        items = self._host_items(int(step), fuse)
        if self.prefetch == 0:
            return (self._place(*item) for item in items)
        return self._prefetched(items)

    def __iter__(self) -> Iterator[dict[str, jax.Array]]:
        return self.iter_from(0)

    def _prefetched(self, items: Iterator[tuple[dict[str, np.ndarray], int]]) -> Iterator[dict[str, jax.Array]]:
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for item in items:
                    if not put(self._place(*item)):
                        return
                put(_DONE)
            except BaseException as e:  # surfaced in the consumer
                put(_Raised(e))

        worker = threading.Thread(target=produce, name="jgen-batch-prefetch", daemon=True)
        worker.start()
        try:
            while True:
                item = q.get()
                if item is _DONE:
                    return
                if isinstance(item, _Raised):
                    raise item.exc
                yield item
        finally:
            stop.set()
            worker.join(timeout=5.0)
