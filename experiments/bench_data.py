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

Streaming (STL-10, uint8 [128, 96, 96, 3] per batch, the shape `jgen.data.stream` exists for):

* stream_stl10: `jgen.data.stream.StreamingBatches` over the prepared array_record files of the unlabelled
  split (grain: global shuffle, random flips, reader threads), and the same with `prefetch=0` (no threads).
* memory_stl10: `jgen.data.BatchIterator` over the same images held in memory, with the same flips
  applied on the host (what streaming saves is the memory, not time, when the data fit).

The STL-10 rows read the real unlabelled split when `$JGEN_DATA_DIR/stl10` holds it, else
`stl10_examples` random images written in the official binary layout (throughput does not depend on the
pixel values); the in-memory row holds the first `stl10_examples` images.

Throughput is the median over `repeats` interleaved runs of `num_batches` batches (after one warm-up
batch). Also reported: `load_s`, the time to read the prepared MNIST training split into memory.
`speedup_vs_<peer>` = peer time / jgen time = jgen images/s / peer images/s.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np

import jgen.data
from jgen.data import stream


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.batch_size = 128
    c.num_batches = 2000 if preset == "full" else 400
    c.tfds_batches = 200 if preset == "full" else 60  # per-record decoding is slow; fewer batches suffice
    c.repeats = 5 if preset == "full" else 3
    c.stream_batches = 200 if preset == "full" else 40
    c.stl10_examples = 20_000 if preset == "full" else 2_000  # fake images (no real STL-10); memory row's size
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


def _write_fake_stl10(root: Path, n: int, seed: int) -> None:
    """`n` random unlabelled images (plus a token labelled split) in the official binary layout."""
    d = root / "stl10" / "stl10_binary"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, count in (("train", 10), ("test", 10), ("unlabeled", n)):
        with open(d / f"{split}_X.bin", "wb") as f:
            for s in range(0, count, 1000):  # column-major 3x96x96 per image, written in chunks
                f.write(rng.integers(0, 256, (min(1000, count - s), 3, 96, 96), dtype=np.uint8).tobytes())
        if split != "unlabeled":
            rng.integers(1, 11, count).astype(np.uint8).tofile(d / f"{split}_y.bin")


def _stl10_kwargs(config, tmp: Path) -> tuple[dict, str]:
    """Source arguments of the STL-10 rows: the real data when present, else fake files under `tmp`."""
    real = Path(os.environ.get("JGEN_DATA_DIR") or "/nonexistent") / "stl10"
    if real.is_dir():
        return {}, "real"
    _write_fake_stl10(tmp / "raw", config.stl10_examples, config.seed)
    return {"data_dir": tmp / "raw", "cache_dir": tmp / "tfds", "download": False}, "fake"


def _flipped_memory_loop(images, batch_size, seed):
    """BatchIterator's gather, plus the same random flips as the streaming rows, on the host."""
    it = jgen.data.BatchIterator({"image": images}, batch_size, seed=seed, prefetch=0)
    rng = np.random.default_rng(seed)
    for step in range(10**12):
        x = it.host_batch(step)["image"]
        flip = rng.random(len(x)) < 0.5
        x[flip] = x[flip, :, ::-1]
        yield jax.device_put({"image": x})


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
    tmp = tempfile.TemporaryDirectory(prefix="bench_data_stl10_")
    stl_kwargs, stl_kind = _stl10_kwargs(config, Path(tmp.name))
    start = time.perf_counter()
    jgen.data.builder("stl10", **stl_kwargs)
    stl_prepare_s = time.perf_counter() - start
    stl_source = jgen.data.data_source("stl10", "unlabelled", **stl_kwargs)
    held = list(range(min(len(stl_source), config.stl10_examples)))
    stl_images = np.stack([e["image"] for e in stl_source.__getitems__(held)])
    stl_stream = lambda prefetch: iter(stream.StreamingBatches(
        "stl10", "unlabelled", b, seed=seed, augment=stream.random_flip, keys=("image",), prefetch=prefetch,
        **stl_kwargs))
    methods.update({
        "stream_stl10": (lambda: stl_stream(4), config.stream_batches),
        "stream_stl10_no_prefetch": (lambda: stl_stream(0), config.stream_batches),
        "memory_stl10": (lambda: _flipped_memory_loop(stl_images, b, seed), config.stream_batches),
    })
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
    tmp.cleanup()
    wd.save_table("throughput", rows)
    for r in rows:
        print(f"{r['method']:>18}: {r['images_per_s']} images/s ({r['ms_per_batch']} ms/batch)")
    metrics = {"images_per_s": ips["jgen"], "images_per_s_no_prefetch": ips["jgen_no_prefetch"],
               "load_s": load_s, "prepare_s": prepare_s}
    for peer in ("numpy_device_put", "tfds_getitems"):
        metrics[f"images_per_s_{peer}"] = ips[peer]
        metrics[f"speedup_vs_{peer}"] = per_batch[peer] / per_batch["jgen"]
    for k in ("stream_stl10", "stream_stl10_no_prefetch", "memory_stl10"):
        metrics[f"images_per_s_{k}"] = ips[k]
    metrics.update(stl10_real_data=float(stl_kind == "real"), stl10_streamed_examples=float(len(stl_source)),
                   stl10_prepare_s=stl_prepare_s)
    print(f"load_s={load_s:.2f}  " + "  ".join(f"{k}={v:.2f}" for k, v in metrics.items() if k.startswith("speedup")))
    return metrics


if __name__ == "__main__":
    import jgen.experiment

    jgen.experiment.main(get_config, run)
