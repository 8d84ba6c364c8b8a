"""Data parallelism with `jax.sharding`: one `data` mesh axis over every device of every process.

The same jitted step runs on 1 device, N local devices or many hosts: parameters are replicated, batches
are split along their leading axis, and XLA (GSPMD) inserts the gradient all-reduce.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["DATA_AXIS", "data_mesh", "batch_sharding", "shard_batch", "replicate", "maybe_initialize_distributed"]

DATA_AXIS = "data"


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named `data` over `devices` (default: all devices of all processes)."""
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("data_mesh needs at least one device")
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding that splits the leading (batch) axis over the `data` axis."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def shard_batch(batch: Any, mesh: Mesh) -> Any:
    """Places a host-local batch pytree on `mesh`, split along the leading axis.

    Args:
      batch: pytree of arrays `[local_batch, ...]`; with several processes each passes its own shard.
      mesh: a mesh from `data_mesh`.

    Returns:
      pytree of global `jax.Array`s of leading size `local_batch * process_count`.
    """
    sharding = batch_sharding(mesh)
    num_shards = mesh.devices.size // jax.process_count()

    def put(x):
        x = np.asarray(x)
        if x.ndim == 0 or x.shape[0] % num_shards:
            raise ValueError(
                f"batch leading dimension {x.shape[:1]} must be divisible by the {num_shards} local devices "
                "of the data mesh; choose a batch size that is a multiple of the device count")
        return jax.make_array_from_process_local_data(sharding, x)

    return jax.tree.map(put, batch)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Copies a pytree (e.g. parameters) to every device of `mesh`."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def maybe_initialize_distributed(enabled: bool) -> None:
    """Calls `jax.distributed.initialize()` for multi-host jobs (coordinator taken from the environment)."""
    if enabled:
        jax.distributed.initialize()
