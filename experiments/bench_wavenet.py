"""Benchmark: WaveNet sampling with cached activation queues against a full forward pass per pixel.

Fast WaveNet generation (Paine et al., 2016) keeps, for each kernel-2 layer of dilation d, a queue of its
last d inputs, so one pixel costs one step per layer: O(T L) work per sequence of T pixels and L layers,
against O(T^2 L) for the naive sampler that reruns the whole causal network for every pixel. Both samplers
(`jgen.autoregressive.wavenet.sample(cached=True/False)`) are compiled `lax.scan`s drawing pixel t with the
same key, so they return the same pixels, which is checked here on every configuration.

For raster-scanned square images of side 7, 14 and 28 (T = 49, 196, 784; dilations 1..2^(k-1) with
2^k >= T), an untrained 256-level WaveNet samples a batch; reported: steady-state seconds (median over
interleaved repeats of compiled functions), samples/s, and `speedup_vs_naive_T<T>` = naive time / cached
time; `speedup_vs_naive` is the one at the longest sequence.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import jgen.experiment
from jgen.autoregressive import wavenet


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.image_sides = (7, 14) if preset == "quick" else (7, 14, 28)
    c.num_samples = 16
    c.channels = 32
    c.skip_channels = 64
    c.num_levels = 256
    c.repeats = 3 if preset == "quick" else 5
    return c


def _seconds(fn) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def run(config: ml_collections.ConfigDict, wd: jgen.experiment.Workdir) -> dict[str, float]:
    metrics, rows = {}, []
    key = jax.random.key(config.seed)
    for side in config.image_sides:
        num_pixels = side * side
        model = wavenet.WaveNet(num_pixels=num_pixels, num_levels=config.num_levels, channels=config.channels,
                                skip_channels=config.skip_channels)
        params = model.init(jax.random.fold_in(key, side), jnp.zeros((1, num_pixels), jnp.int32))
        samplers = {mode: (lambda c=(mode == "cached"): wavenet.sample(model, params, key, config.num_samples,
                                                                        cached=c))
                    for mode in ("cached", "naive")}
        first = {mode: _seconds(fn) for mode, fn in samplers.items()}  # includes compilation
        same = np.array_equal(np.asarray(samplers["cached"]()), np.asarray(samplers["naive"]()))
        times = {mode: [] for mode in samplers}
        for _ in range(config.repeats):  # interleaved, so load changes hit both alike
            for mode, fn in samplers.items():
                times[mode].append(_seconds(fn))
        median = {mode: statistics.median(t) for mode, t in times.items()}
        speedup = median["naive"] / median["cached"]
        print(f"T={num_pixels:4d} ({side}x{side}), {len(model.layer_dilations)} layers: "
              f"cached {median['cached'] * 1e3:9.2f} ms, naive {median['naive'] * 1e3:9.2f} ms, "
              f"speed-up x{speedup:.1f}, identical pixels: {same}")
        for mode in samplers:
            rows.append({"num_pixels": num_pixels, "layers": len(model.layer_dilations), "sampler": mode,
                         "seconds": median[mode], "samples_per_s": config.num_samples / median[mode],
                         "compile_seconds": max(first[mode] - median[mode], 0.0)})
        metrics[f"speedup_vs_naive_T{num_pixels}"] = speedup
        metrics[f"samples_per_s_cached_T{num_pixels}"] = config.num_samples / median["cached"]
        metrics[f"samples_per_s_naive_T{num_pixels}"] = config.num_samples / median["naive"]
        metrics[f"identical_samples_T{num_pixels}"] = float(same)
        metrics["speedup_vs_naive"] = speedup  # the longest sequence wins (last in the loop)
    wd.save_table("sampling_times", rows)
    metrics["device_is_cpu"] = float(jax.devices()[0].platform == "cpu")
    return metrics


if __name__ == "__main__":
    jgen.experiment.main(get_config, run)
