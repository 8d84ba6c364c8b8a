"""bench_wavenet at tiny sizes: both samplers draw the same pixels and the ratios are reported."""

from experiments import bench_wavenet
from jgen import experiment

TINY = {"image_sides": (3,), "num_samples": 2, "channels": 8, "skip_channels": 8, "num_levels": 16, "repeats": 1}


def test_tiny_benchmark_reports_identical_samples_and_speedups(tmp_path):
    m = experiment.run_experiment(bench_wavenet.get_config, bench_wavenet.run, tmp_path, "quick", overrides=TINY)
    assert m["identical_samples_T9"] == 1.0
    assert m["speedup_vs_naive"] == m["speedup_vs_naive_T9"] > 0
    assert m["samples_per_s_cached_T9"] > 0 and m["samples_per_s_naive_T9"] > 0
    lines = (tmp_path / "tables" / "sampling_times.csv").read_text().splitlines()
    assert lines[0].startswith("num_pixels,layers,sampler,seconds") and len(lines) == 3
