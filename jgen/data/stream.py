"""`StreamingBatches`: mini-batches streamed from a prepared TFDS dataset through grain, for data too large
to hold in memory (STL-10 with its unlabelled split: 113,000 images of 96x96x3, 3.1 GB as uint8).

The pipeline is a grain `MapDataset`, so every batch is a pure function of its index:

    record indices -> this host's shard [p::P] -> global shuffle from `seed` (a new permutation every
    epoch) -> repeat -> batches of batch_size / P indices -> one `__getitems__` read of the
    tfds.data_source (array_record) per batch -> augmentation `augment(batch, np_rng)` (seeded per batch)
    -> device (sharded along the `data` axis with a mesh)

Batch `k` is the same whether it is reached from step 0 or by `iter_from(k)`, so the step counter saved in
the train state is the iterator state: `jgen.train.fit` resumes a run on exactly the batches an
uninterrupted one would see. Batches are read and augmented by grain's thread pool ahead of the consumer;
reading a batch's records in one call is several times faster than grain's record-by-record batching.
Batches run across epoch boundaries (an epoch is `steps_per_epoch` batches, rounded down).

Small datasets keep the in-memory path (`jgen.data.BatchIterator`), which is faster when the data fit.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator

import grain
import jax
import numpy as np

from jgen import sharding
from jgen.data.loading import data_source

__all__ = ["StreamingBatches", "random_flip"]

Augment = Callable[[dict, np.random.Generator], dict]


def random_flip(batch: dict, rng: np.random.Generator, *, key: str = "image") -> dict:
    """Mirrors each image of `batch[key]` ([n, H, W, C]) left-right with probability 1/2 (an `augment`)."""
    flip = rng.random(len(batch[key])) < 0.5
    images = batch[key].copy()
    images[flip] = images[flip, :, ::-1]
    return {**batch, key: images}


class StreamingBatches:
    """Shuffled, per-host-sharded, augmented batches of a prepared TFDS split, read through grain.

    Example:
      >>> batches = StreamingBatches("stl10", "unlabelled", 128, seed=0, augment=random_flip)  # doctest: +SKIP
      >>> result = jgen.train.fit_loss(loss_fn, params, tx, batches, num_steps, key=key)  # doctest: +SKIP

    Args:
      name, split: the dataset and split (`jgen.data.data_source`); or pass `source=` directly (anything
        with `len` and `__getitem__` returning dicts of numpy arrays, e.g. `tfds.data_source(...)`).
      batch_size: global batch size (over all processes); must divide by the process count.
      seed: seed of the shuffle and of the augmentation.
      shuffle: shuffle globally every epoch (else records in order).
      augment: optional `augment(batch, rng) -> batch` on this host's numpy batch, e.g. `random_flip`.
      keys: features to keep (default: all), e.g. ("image",) to drop labels.
      mesh: optional mesh with a `data` axis; batches are then global arrays sharded along it.
      num_threads: grain reader threads; prefetch: batches read ahead (0: read on demand, no threads).
      device: device for unsharded batches (default `jax.devices()[0]`).
      **source_kwargs: forwarded to `jgen.data.data_source` (data_dir, cache_dir, download, ...).
    """

    def __init__(self, name: str | None = None, split: str = "train", batch_size: int = 128, *, source: Any = None,
                 seed: int = 0, shuffle: bool = True, augment: Augment | None = None,
                 keys: tuple[str, ...] | None = None, mesh: jax.sharding.Mesh | None = None,
                 num_threads: int = min(16, os.cpu_count() or 1), prefetch: int = 4,
                 device: jax.Device | None = None, **source_kwargs: Any):
        if (name is None) == (source is None):
            raise ValueError("pass either a dataset name or source=..., not both or neither")
        self.source = data_source(name, split, **source_kwargs) if source is None else source
        n_proc, proc = jax.process_count(), jax.process_index()
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1 \
                or batch_size % n_proc:
            raise ValueError(f"batch_size must be a positive int divisible by the {n_proc} processes, got {batch_size!r}")
        if mesh is not None and sharding.DATA_AXIS not in mesh.axis_names:
            raise ValueError(f"mesh needs a {sharding.DATA_AXIS!r} axis, got axes {mesh.axis_names}")
        if mesh is not None and batch_size % mesh.devices.size:
            raise ValueError(f"batch of {batch_size} cannot be split evenly over {mesh.devices.size} devices")
        if not 0 <= seed < 2**32:
            raise ValueError(f"seed must lie in 0..2**32-1 (grain's shuffle seed), got {seed}")
        self.batch_size, self.seed, self.mesh, self.device = int(batch_size), int(seed), mesh, device
        self.num_threads, self.prefetch = int(num_threads), int(prefetch)
        self.keys = None if keys is None else tuple(keys)
        ds = grain.MapDataset.range(len(self.source))
        if n_proc > 1:  # each host reads only its own records
            ds = ds[proc::n_proc]
        self.num_examples = len(ds)  # on this host
        self.host_batch_size = self.batch_size // n_proc
        if self.num_examples < self.host_batch_size:
            raise ValueError(f"batch of {self.host_batch_size} per host exceeds the {self.num_examples} examples")
        self.steps_per_epoch = self.num_examples // self.host_batch_size
        if shuffle:
            ds = ds.shuffle(seed=self.seed)
        ds = ds.repeat().batch(self.host_batch_size, drop_remainder=True).map(self._read)
        self.dataset = ds if augment is None else ds.random_map(augment, seed=self.seed)

    def _read(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        idx = [int(i) for i in indices]
        getitems = getattr(self.source, "__getitems__", None)
        examples = getitems(idx) if getitems is not None else [self.source[i] for i in idx]
        keys = self.keys if self.keys is not None else tuple(examples[0])
        return {k: np.stack([np.asarray(e[k]) for e in examples]) for k in keys}

    def host_batch(self, step: int) -> dict[str, np.ndarray]:
        """This host's part of batch `step` as numpy arrays (read now, without threads)."""
        return self.dataset[int(step)]

    def _place(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        if self.mesh is None:
            return jax.device_put(batch, self.device)
        return sharding.shard_batch(batch, self.mesh)

    def iter_from(self, step: int = 0) -> Iterator[dict[str, jax.Array]]:
        """Yields batches `step, step + 1, ...` on device; equal to skipping `step` batches of `iter(self)`."""
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"step must be a non-negative int, got {step!r}")
        if self.prefetch == 0:
            return (self._place(self.host_batch(s)) for s in range(int(step), len(self.dataset)))
        options = grain.ReadOptions(num_threads=self.num_threads, prefetch_buffer_size=self.prefetch)
        return map(self._place, iter(self.dataset[int(step):].to_iter_dataset(options)))

    def __iter__(self) -> Iterator[dict[str, jax.Array]]:
        return self.iter_from(0)
