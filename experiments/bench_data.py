"""Benchmark: MNIST training batches delivered to the device, images per second.

Every method delivers shuffled batches of 128 MNIST training images (uint8 [128, 28, 28, 1]) and labels as
`jax.Array`s on the default device and waits for them (`block_until_ready`); the time per batch is what an
input pipeline adds to every training step.

* jgen: `jgen.data.BatchIterator` over the in-memory arrays from `jgen.data.load("mnist")` (per-epoch
  permutation, gather, `device_put`; a background thread prepares the next batches), and the same with
  `prefetch=0` (no thread).
* numpy_device_put: a plain loop doing the same permutation + fancy indexing + `jax.device_put` inline.
* tfds_getitems: `jgen.data.data_source("mnist")` (TFDS array_record source), one `__getitems__` call per
  batch (TFDS decodes each record in Python), `np.stack`, `jax.device_put` (no grain).

Throughput is the median over `repeats` interleaved runs of `num_batches` batches (after one warm-up
batch). Also reported: `load_s`, the time to read the prepared MNIST training split into memory.
`speedup_vs_<peer>` = peer time / jgen time = jgen images/s / peer images/s.
"""

from __future__ import annotations

import statistics
import time

import jax
import ml_collections
import numpy as np

import jgen.data

try:
    import grain  # noqa: F401  (optional peer; not used when absent)
except ImportError:
    grain = None


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.batch_size = 128
    c.num_batches = 2000 if preset == "full" else 400
    c.tfds_batches = 200 if preset == "full" else 60  # per-record decoding is slow; fewer batches suffice
    c.repeats = 5 if preset == "full" else 3
    return c


def _time_batches(batches, n: int) -> float:
    """Seconds per batch over `n` batches from the iterator `batches` (after one warm-up batch)."""
    jax.block_until_ready(next(batches))
    start = time.perf_counter()
    for _ in range(n):
        jax.block_until_ready(next(batches))
    return (time.perf_counter() - start) / n


def _numpy_loop(arrays, batch_size, seed):
    n = len(arrays["label"])
    epoch = 0
    while True:
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        for i in range(n // batch_size):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            yield jax.device_put({k: v[idx] for k, v in arrays.items()})
        epoch += 1


def _tfds_loop(source, batch_size, seed):
    n = len(source)
    epoch = 0
    while True:
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        for i in range(n // batch_size):
            exs = source.__getitems__(perm[i * batch_size:(i + 1) * batch_size].tolist())
            yield jax.device_put({k: np.stack([e[k] for e in exs]) for k in exs[0]})
        epoch += 1


def run(config: ml_collections.ConfigDict, wd) -> dict[str, float]:
    start = time.perf_counter()
    jgen.data.builder("mnist")  # prepares once into the cache (JGEN_TFDS_DIR); not part of the timing
    prepare_s = time.perf_counter() - start
    start = time.perf_counter()
    train = jgen.data.load("mnist", "train")
    load_s = time.perf_counter() - start
    source = jgen.data.data_source("mnist", "train")
    b, seed = config.batch_size, config.seed

    methods = {
        "jgen": (lambda: iter(jgen.data.BatchIterator(train, b, seed=seed)), config.num_batches),
        "jgen_no_prefetch": (lambda: iter(jgen.data.BatchIterator(train, b, seed=seed, prefetch=0)),
                             config.num_batches),
        "numpy_device_put": (lambda: _numpy_loop(train, b, seed), config.num_batches),
        "tfds_getitems": (lambda: _tfds_loop(source, b, seed), config.tfds_batches),
    }
    times: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(config.repeats):  # interleaved so that load on the machine hits every method alike
        for name, (make, n) in methods.items():
            it = make()
            times[name].append(_time_batches(it, n))
            if hasattr(it, "close"):
                it.close()

    per_batch = {k: statistics.median(v) for k, v in times.items()}
    ips = {k: b / t for k, t in per_batch.items()}
    rows = [{"method": k, "images_per_s": round(ips[k]), "ms_per_batch": round(1e3 * per_batch[k], 4),
             "batches_timed": methods[k][1] * config.repeats} for k in methods]
    if grain is None:
        rows.append({"method": "grain", "images_per_s": None, "ms_per_batch": None,
                     "batches_timed": "skipped: grain is not installed"})
    wd.save_table("throughput", rows)
    for r in rows:
        print(f"{r['method']:>18}: {r['images_per_s']} images/s ({r['ms_per_batch']} ms/batch)")
    metrics = {"images_per_s": ips["jgen"], "images_per_s_no_prefetch": ips["jgen_no_prefetch"],
               "load_s": load_s, "prepare_s": prepare_s}
    for peer in ("numpy_device_put", "tfds_getitems"):
        metrics[f"images_per_s_{peer}"] = ips[peer]
        metrics[f"speedup_vs_{peer}"] = per_batch[peer] / per_batch["jgen"]
    print(f"load_s={load_s:.2f}  " + "  ".join(f"{k}={v:.2f}" for k, v in metrics.items() if k.startswith("speedup")))
    return metrics


if __name__ == "__main__":
    import jgen.experiment

    jgen.experiment.main(get_config, run)
